//! The pages' filters: an invalid value (a date, a list's value, a team, a page number) is
//! said in French on the page drawn with the form as typed (400) instead of being ignored,
//! and a page number past the last page says how many there are, with a link to the last.

use crate::common::env;
use crate::coord::{Browser, PASSWORD, coordinator, server, visit};

#[test]
fn invalid_filters_are_said_on_the_page_not_ignored() {
    let env = env();
    coordinator(&env, "camille@ml.test");
    let mut tablet = env.tablet(&env.team_a, "binome-a");
    visit(&mut tablet);
    let server = server(&env);
    let mut browser = Browser::new(&server);
    browser.signed_in("camille@ml.test", PASSWORD);

    for (path, says, echoed) in [
        (
            "/visites?du=2025-13-45",
            "La date « Du »",
            Some(r#"value="2025-13-45""#),
        ),
        (
            "/visites?au=demain",
            "La date « Au »",
            Some(r#"value="demain""#),
        ),
        (
            "/visites?du=2025-06-01&au=2025-01-01",
            "La date de fin précède",
            None,
        ),
        ("/visites?etat=archivee", "L'état de revue demandé", None),
        ("/visites?equipe=binome-a", "L'équipe demandée", None),
        ("/visites?page=abc", "numéro de page", None),
        ("/visites?page=0", "numéro de page", None),
        ("/visites?page=-2", "numéro de page", None),
        ("/visites?page=99999999999", "numéro de page", None),
        ("/jeunes?statut=_unknown", "Le statut demandé", None),
        (
            "/jeunes?statut=perdu&q=Kevin",
            "Le statut demandé",
            Some(r#"value="Kevin""#),
        ),
        ("/jeunes?page=deux", "numéro de page", None),
        ("/journal?page=1.5", "numéro de page", None),
    ] {
        let page = browser.get(path);
        assert_eq!(page.status, 400, "{path}");
        assert!(
            page.body.contains(r#"data-testid="filter-error""#),
            "{path}"
        );
        assert!(page.body.contains(says), "{path}: {}", page.body);
        // The page is drawn (navigation, the form), the list is not.
        assert!(page.body.contains(r#"data-testid="nav-visites""#), "{path}");
        assert!(!page.body.contains(r#"data-testid="visit-row""#), "{path}");
        if let Some(echoed) = echoed {
            assert!(
                page.body.contains(echoed),
                "{path}: the form keeps what was typed"
            );
        }
    }

    for (path, says) in [
        ("/tableau-de-bord?du=2025-02-30", "La date « Du »"),
        ("/tableau-de-bord?granularite=week", "Le découpage demandé"),
        ("/tableau-de-bord?dimension=hair", "Le détail demandé"),
        ("/tableau-de-bord?equipe=x", "L'équipe demandée"),
        // The indicators' CSV has the dashboard's filters: refused there, on its page.
        (
            "/exports/indicateurs.csv?granularite=week",
            "Le découpage demandé",
        ),
        (
            "/exports/indicateurs.csv?du=2025-06-01&au=2025-01-01",
            "La date de fin précède",
        ),
    ] {
        let page = browser.get(path);
        assert_eq!(page.status, 400, "{path}");
        assert!(page.content_type.starts_with("text/html"), "{path}");
        assert!(
            page.body.contains(r#"data-testid="dashboard-error""#),
            "{path}"
        );
        assert!(page.body.contains(says), "{path}: {}", page.body);
        assert!(page.body.contains(r#"data-testid="dashboard-filter-form""#));
        assert!(!page.body.contains(r#"data-testid="totals""#), "{path}");
    }
    let page = browser.get("/tableau-de-bord?dimension=hair&du=2025-01-01");
    assert!(
        page.body.contains(r#"value="2025-01-01""#),
        "the form keeps what was typed"
    );

    let page = browser.get("/exports/jeunes.csv?equipe=toutes");
    assert_eq!(page.status, 400);
    assert!(page.body.contains(r#"data-testid="filter-error""#));
    assert!(page.body.contains("Rien n'a été exporté"));

    // Valid and empty values are still fine.
    for path in [
        "/visites?du=&au=&commune=&etat=&equipe=&page=",
        "/visites?etat=to_review&page=1",
        &format!("/visites?equipe={}", env.team_a.id),
        "/jeunes?statut=identified",
        "/journal?page=1",
        "/tableau-de-bord?granularite=quarter&dimension=sex&du=&au=",
        "/exports/indicateurs.csv?granularite=whole",
        "/exports/jeunes.csv?equipe=",
    ] {
        assert_eq!(browser.get(path).status, 200, "{path}");
    }
}

#[test]
fn a_page_past_the_last_one_says_how_many_there_are() {
    let env = env();
    coordinator(&env, "camille@ml.test");
    let mut tablet = env.tablet(&env.team_a, "binome-a");
    let (youth_id, _) = visit(&mut tablet);
    // 26 visits: two pages of 25.
    for _ in 0..25 {
        let contact = tablet.demo.contact(&[youth_id]);
        tablet.store.create(&contact).expect("contact");
    }
    tablet.sync_ok();
    let server = server(&env);
    let mut browser = Browser::new(&server);
    browser.signed_in("camille@ml.test", PASSWORD);

    let last = browser.get("/visites?page=2");
    assert_eq!(last.status, 200);
    assert!(last.body.contains(r#"data-testid="visit-row""#));
    assert!(!last.body.contains(r#"data-testid="page-missing""#));

    let past = browser.get("/visites?etat=to_review&page=7");
    assert_eq!(past.status, 404);
    assert!(past.body.contains(r#"data-testid="page-missing""#));
    assert!(
        past.body
            .contains("Cette page n'existe pas : il y a 2 pages."),
        "{}",
        past.body
    );
    // The link keeps the filters.
    assert!(
        past.body
            .contains(r#"href="/visites?etat=to_review&amp;page=2" data-testid="pagination-last""#)
    );
    assert!(!past.body.contains(r#"data-testid="visits-empty""#));

    let past = browser.get("/jeunes?page=3");
    assert_eq!(past.status, 404);
    assert!(
        past.body
            .contains("Cette page n'existe pas : il y a 1 page.")
    );
    assert!(past.body.contains(r#"href="/jeunes?page=1""#));

    let past = browser.get("/journal?page=40");
    assert_eq!(past.status, 404);
    assert!(
        past.body
            .contains("Cette page n'existe pas : il y a 1 page.")
    );
    assert!(past.body.contains(r#"href="/journal?page=1""#));

    // A filter that matches nothing is one empty page, not a missing one.
    let empty = browser.get("/visites?etat=flagged");
    assert_eq!(empty.status, 200);
    assert!(empty.body.contains(r#"data-testid="visits-empty""#));
}
