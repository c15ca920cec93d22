//! The team's roster and the coordinators' decisions on its visits, as synced.

use repere_core::sync::protocol::DecisionState as CoreState;
use repere_core::{TeamMember as CoreMember, VisitDecision as CoreDecision};

use crate::error::{RepereError, guard};
use crate::records::parse_id;
use crate::store::RepereStore;

/// A member of the tablet's team: an id records name, and the name to show.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct TeamMember {
    pub id: String,
    pub name: String,
    /// Only active members are offered for new records (« membres présents »).
    pub active: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum DecisionState {
    Approved,
    /// Asks the binôme for action: the reason says what.
    Flagged,
    /// A question was asked (see `review_tasks`).
    Question,
}

/// A coordinator's latest decision on a visit.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct VisitDecision {
    pub contact_id: String,
    pub state: DecisionState,
    /// Why it was flagged (empty otherwise).
    pub reason: String,
    /// RFC 3339.
    pub at: String,
    pub asks_for_action: bool,
}

fn member(m: CoreMember) -> TeamMember {
    TeamMember {
        id: m.id.to_string(),
        name: m.name,
        active: m.active,
    }
}

pub(crate) fn decision(d: CoreDecision) -> VisitDecision {
    VisitDecision {
        asks_for_action: d.asks_for_action(),
        contact_id: d.contact_id.to_string(),
        state: match d.state {
            CoreState::Approved => DecisionState::Approved,
            CoreState::Flagged => DecisionState::Flagged,
            CoreState::Question => DecisionState::Question,
        },
        reason: d.reason,
        at: d.at.to_rfc3339(),
    }
}

#[uniffi::export]
impl RepereStore {
    /// The team's members, active first, each group by name. Empty before the first sync.
    pub fn roster(&self) -> Result<Vec<TeamMember>, RepereError> {
        guard(|| Ok(self.lock().roster()?.into_iter().map(member).collect()))
    }

    /// A member's display name, active or not; `None` for an id the roster does not know.
    pub fn member_name(&self, id: String) -> Result<Option<String>, RepereError> {
        guard(|| Ok(self.lock().member_name(parse_id(&id)?)?))
    }

    /// The coordinators' latest decision on a visit, if any.
    pub fn visit_decision(&self, contact_id: String) -> Result<Option<VisitDecision>, RepereError> {
        guard(|| {
            Ok(self
                .lock()
                .visit_decision(parse_id(&contact_id)?)?
                .map(decision))
        })
    }

    /// Flagged visits on this tablet (they ask for action), newest first.
    pub fn flagged_visits(
        &self,
        offset: u32,
        limit: u32,
    ) -> Result<Vec<VisitDecision>, RepereError> {
        guard(|| {
            Ok(self
                .lock()
                .flagged_visits(offset, limit)?
                .into_iter()
                .map(decision)
                .collect())
        })
    }
}
