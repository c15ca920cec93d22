//! What the retention rules will purge in the coordinator's teams within the notice period
//! (`retention::NOTICE_DAYS`), so that a file still followed gets a new contact in time.

use chrono::NaiveDate;
use repere_core::RecordKind;
use repere_core::records::Youth;
use uuid::Uuid;

use super::view::decode;
use super::{Coordinator, Workspace};
use crate::hub::HubError;
use crate::retention::{Due, NOTICE_DAYS};

/// One record the rules will purge, as the page lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DueItem {
    pub due: Due,
    pub team_name: String,
    /// A young person's name as the pages show it; for a tour, its kind.
    pub label: String,
    /// Negative when already due: erased at the server's next daily pass.
    pub days_left: i64,
}

/// The page: the organisation's rule and what falls due.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetentionView {
    pub months: u32,
    pub today: NaiveDate,
    pub items: Vec<DueItem>,
}

impl Workspace {
    pub fn retention_due(&self, who: &Coordinator) -> Result<RetentionView, HubError> {
        self.refresh_view()?;
        let today = self.today();
        let months = self.hub().retention_months(who.organisation.id)?;
        let due: Vec<Due> = self
            .hub()
            .retention_plan(today, NOTICE_DAYS)?
            .into_iter()
            .filter(|d| who.in_scope(d.team_id))
            .collect();
        let items = self
            .hub()
            .storage()
            .read_with(|tx| -> Result<_, HubError> {
                let mut items = Vec::with_capacity(due.len());
                for d in &due {
                    let label = match d.kind {
                        RecordKind::Youth => tx
                            .view_record(d.id)?
                            .and_then(|v| decode::<Youth>(&v))
                            .map_or_else(|| "Jeune".to_string(), |y| y.display_name()),
                        RecordKind::Tour => "Tournée".to_string(),
                        other => other.to_string(),
                    };
                    items.push(DueItem {
                        team_name: who.team_name(d.team_id),
                        label,
                        days_left: (d.purge_on - today).num_days(),
                        due: d.clone(),
                    });
                }
                Ok(items)
            })?;
        Ok(RetentionView {
            months,
            today,
            items,
        })
    }
}

/// Where a listed record is shown (tours have no page).
pub fn link(kind: RecordKind, id: Uuid) -> Option<String> {
    (kind == RecordKind::Youth).then(|| format!("/jeunes/{id}"))
}
