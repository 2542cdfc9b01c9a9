//! Who may do what: roles, actors and the one authorisation rule, [`can`].
//!
//! Every HTTP route and every sync message asks `can(actor, action, resource)` before touching
//! the store, with the resource's *owners* filled in from the store (the site's operator, the
//! order's account). The rule is a pure function so the whole table is tested exhaustively:
//!
//! | actor | may |
//! |---|---|
//! | admin | everything |
//! | operator | read its own operator record; manage its own sites, chargers, tariffs and the accounts it scopes; read and stop orders at its sites; read their commands; read its own bills and sharing rules; read and set its own webhook endpoint |
//! | driver | read and update its own account; create, read and stop its own sessions (orders); read the commands of its own orders |
//! | edge | read and sync its own site's sync routes (records up, config and commands down) |
//!
//! Everything else is refused, including every action on another tenant's resources.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use voltline_protocol::domain::{AccountId, OperatorId, SiteId};

use super::order::UnknownName;

/// The role a bearer token carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Admin,
    Operator,
    Driver,
    Edge,
}

impl Role {
    /// Every role.
    pub const ALL: [Role; 4] = [Role::Admin, Role::Operator, Role::Driver, Role::Edge];

    /// The stored text.
    pub const fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Operator => "operator",
            Role::Driver => "driver",
            Role::Edge => "edge",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = UnknownName;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| UnknownName {
                text: s.to_owned(),
                what: "role (admin, operator, driver, edge)",
            })
    }
}

/// An authenticated caller: a role bound to the subject it acts for.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "role", content = "subject", rename_all = "snake_case")]
pub enum Actor {
    Admin,
    Operator(OperatorId),
    Driver(AccountId),
    Edge(SiteId),
}

/// A role and subject text that do not make an actor.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BadActor {
    #[error("role {0} needs a subject id: give the operator, account or site it acts for")]
    MissingSubject(Role),
    #[error("role admin acts for nobody in particular: leave the subject empty")]
    AdminWithSubject,
    #[error(transparent)]
    BadId(#[from] voltline_protocol::domain::BadId),
}

impl Actor {
    /// The role.
    pub fn role(&self) -> Role {
        match self {
            Actor::Admin => Role::Admin,
            Actor::Operator(_) => Role::Operator,
            Actor::Driver(_) => Role::Driver,
            Actor::Edge(_) => Role::Edge,
        }
    }

    /// The subject id as stored (`None` for admin).
    pub fn subject(&self) -> Option<&str> {
        match self {
            Actor::Admin => None,
            Actor::Operator(id) => Some(id.as_str()),
            Actor::Driver(id) => Some(id.as_str()),
            Actor::Edge(id) => Some(id.as_str()),
        }
    }

    /// Rebuilds an actor from a stored role and subject.
    pub fn from_parts(role: Role, subject: Option<&str>) -> Result<Actor, BadActor> {
        match (role, subject) {
            (Role::Admin, None) => Ok(Actor::Admin),
            (Role::Admin, Some(_)) => Err(BadActor::AdminWithSubject),
            (r, None) => Err(BadActor::MissingSubject(r)),
            (Role::Operator, Some(s)) => Ok(Actor::Operator(OperatorId::new(s)?)),
            (Role::Driver, Some(s)) => Ok(Actor::Driver(AccountId::new(s)?)),
            (Role::Edge, Some(s)) => Ok(Actor::Edge(SiteId::new(s)?)),
        }
    }
}

/// What an actor wants to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    Read,
    Create,
    Update,
    Delete,
    /// Exchange sync traffic (records up, acks, config and commands down).
    Sync,
}

impl Action {
    /// Every action.
    pub const ALL: [Action; 5] = [
        Action::Read,
        Action::Create,
        Action::Update,
        Action::Delete,
        Action::Sync,
    ];
}

/// What an action is on, with its owners as the store knows them.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Resource {
    /// An operator (tenant) record; creating one is an admin's job.
    Operator(OperatorId),
    /// A site of `operator`.
    Site { operator: OperatorId },
    /// A charger at a site of `operator`.
    Charger { operator: OperatorId },
    /// A tariff of `operator`.
    Tariff { operator: OperatorId },
    /// A driver account, scoped to an operator or platform-wide (`None`).
    Account {
        account: AccountId,
        operator: Option<OperatorId>,
    },
    /// An order (session) of `account` at a site of `operator`.
    Order {
        account: AccountId,
        operator: OperatorId,
    },
    /// A command to a site of `operator`, for an order of `account` if any.
    Command {
        account: Option<AccountId>,
        operator: OperatorId,
    },
    /// A daily settlement bill of `operator`.
    Bill { operator: OperatorId },
    /// A revenue-sharing rule of `operator` (created by admins only).
    SharingRule { operator: OperatorId },
    /// The webhook endpoint of `operator`.
    Webhook { operator: OperatorId },
    /// A site's sync routes.
    SiteSync(SiteId),
    /// Bearer tokens (issuing, revoking).
    Token,
}

/// The authorisation rule. See the module doc for the table it implements.
pub fn can(actor: &Actor, action: Action, resource: &Resource) -> bool {
    use Action as A;
    use Resource as R;
    match actor {
        Actor::Admin => true,
        Actor::Operator(me) => match resource {
            R::Operator(id) => id == me && action == A::Read,
            R::Site { operator } | R::Charger { operator } | R::Tariff { operator } => {
                operator == me && matches!(action, A::Read | A::Create | A::Update | A::Delete)
            }
            R::Account { operator, .. } => {
                operator.as_ref() == Some(me)
                    && matches!(action, A::Read | A::Create | A::Update | A::Delete)
            }
            R::Order { operator, .. } => operator == me && matches!(action, A::Read | A::Update),
            R::Command { operator, .. } => operator == me && action == A::Read,
            R::Bill { operator } | R::SharingRule { operator } => {
                operator == me && action == A::Read
            }
            R::Webhook { operator } => operator == me && matches!(action, A::Read | A::Update),
            R::SiteSync(_) | R::Token => false,
        },
        Actor::Driver(me) => match resource {
            R::Account { account, .. } => account == me && matches!(action, A::Read | A::Update),
            R::Order { account, .. } => {
                account == me && matches!(action, A::Read | A::Create | A::Update)
            }
            R::Command { account, .. } => account.as_ref() == Some(me) && action == A::Read,
            R::Operator(_)
            | R::Site { .. }
            | R::Charger { .. }
            | R::Tariff { .. }
            | R::Bill { .. }
            | R::SharingRule { .. }
            | R::Webhook { .. }
            | R::SiteSync(_)
            | R::Token => false,
        },
        Actor::Edge(me) => match resource {
            R::SiteSync(site) => site == me && matches!(action, A::Sync | A::Read),
            _ => false,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Action::*;

    fn op(s: &str) -> OperatorId {
        OperatorId::new(s).unwrap()
    }
    fn acct(s: &str) -> AccountId {
        AccountId::new(s).unwrap()
    }
    fn site(s: &str) -> SiteId {
        SiteId::new(s).unwrap()
    }

    /// Operator A owns site S; driver D is scoped to A; operator B, driver E and site T are
    /// the foreign ones; account F is platform-wide.
    fn resources() -> Vec<(&'static str, Resource)> {
        vec![
            ("operator:A", Resource::Operator(op("A"))),
            ("operator:B", Resource::Operator(op("B"))),
            ("site:A", Resource::Site { operator: op("A") }),
            ("site:B", Resource::Site { operator: op("B") }),
            ("charger:A", Resource::Charger { operator: op("A") }),
            ("charger:B", Resource::Charger { operator: op("B") }),
            ("tariff:A", Resource::Tariff { operator: op("A") }),
            ("tariff:B", Resource::Tariff { operator: op("B") }),
            (
                "account:D@A",
                Resource::Account {
                    account: acct("D"),
                    operator: Some(op("A")),
                },
            ),
            (
                "account:E@B",
                Resource::Account {
                    account: acct("E"),
                    operator: Some(op("B")),
                },
            ),
            (
                "account:F",
                Resource::Account {
                    account: acct("F"),
                    operator: None,
                },
            ),
            (
                "order:D@A",
                Resource::Order {
                    account: acct("D"),
                    operator: op("A"),
                },
            ),
            (
                "order:D@B",
                Resource::Order {
                    account: acct("D"),
                    operator: op("B"),
                },
            ),
            (
                "order:E@B",
                Resource::Order {
                    account: acct("E"),
                    operator: op("B"),
                },
            ),
            (
                "command:D@A",
                Resource::Command {
                    account: Some(acct("D")),
                    operator: op("A"),
                },
            ),
            (
                "command:-@A",
                Resource::Command {
                    account: None,
                    operator: op("A"),
                },
            ),
            (
                "command:E@B",
                Resource::Command {
                    account: Some(acct("E")),
                    operator: op("B"),
                },
            ),
            ("bill:A", Resource::Bill { operator: op("A") }),
            ("bill:B", Resource::Bill { operator: op("B") }),
            ("rule:A", Resource::SharingRule { operator: op("A") }),
            ("rule:B", Resource::SharingRule { operator: op("B") }),
            ("webhook:A", Resource::Webhook { operator: op("A") }),
            ("webhook:B", Resource::Webhook { operator: op("B") }),
            ("sync:S", Resource::SiteSync(site("S"))),
            ("sync:T", Resource::SiteSync(site("T"))),
            ("token", Resource::Token),
        ]
    }

    /// Everything a non-admin may do, written out. Admin may do everything; anything not
    /// listed here is refused.
    const ALLOWED: &[(&str, Action, &str)] = &[
        ("operator:A", Read, "operator:A"),
        ("operator:A", Read, "site:A"),
        ("operator:A", Create, "site:A"),
        ("operator:A", Update, "site:A"),
        ("operator:A", Delete, "site:A"),
        ("operator:A", Read, "charger:A"),
        ("operator:A", Create, "charger:A"),
        ("operator:A", Update, "charger:A"),
        ("operator:A", Delete, "charger:A"),
        ("operator:A", Read, "tariff:A"),
        ("operator:A", Create, "tariff:A"),
        ("operator:A", Update, "tariff:A"),
        ("operator:A", Delete, "tariff:A"),
        ("operator:A", Read, "account:D@A"),
        ("operator:A", Create, "account:D@A"),
        ("operator:A", Update, "account:D@A"),
        ("operator:A", Delete, "account:D@A"),
        ("operator:A", Read, "order:D@A"),
        ("operator:A", Update, "order:D@A"),
        ("operator:A", Read, "command:D@A"),
        ("operator:A", Read, "command:-@A"),
        ("operator:A", Read, "bill:A"),
        ("operator:A", Read, "rule:A"),
        ("operator:A", Read, "webhook:A"),
        ("operator:A", Update, "webhook:A"),
        ("driver:D", Read, "account:D@A"),
        ("driver:D", Update, "account:D@A"),
        ("driver:D", Read, "order:D@A"),
        ("driver:D", Create, "order:D@A"),
        ("driver:D", Update, "order:D@A"),
        ("driver:D", Read, "order:D@B"),
        ("driver:D", Create, "order:D@B"),
        ("driver:D", Update, "order:D@B"),
        ("driver:D", Read, "command:D@A"),
        ("edge:S", Read, "sync:S"),
        ("edge:S", Sync, "sync:S"),
    ];

    #[test]
    fn every_actor_action_and_resource_follows_the_table() {
        let actors = [
            ("admin", Actor::Admin),
            ("operator:A", Actor::Operator(op("A"))),
            ("driver:D", Actor::Driver(acct("D"))),
            ("edge:S", Actor::Edge(site("S"))),
        ];
        let mut checked = 0;
        for (actor_name, actor) in &actors {
            for action in Action::ALL {
                for (res_name, res) in resources() {
                    let want =
                        *actor_name == "admin" || ALLOWED.contains(&(actor_name, action, res_name));
                    assert_eq!(
                        can(actor, action, &res),
                        want,
                        "{actor_name} {action:?} {res_name}"
                    );
                    checked += 1;
                }
            }
        }
        assert_eq!(checked, 4 * 5 * 26);
    }

    #[test]
    fn actors_round_trip_through_role_and_subject() {
        for a in [
            Actor::Admin,
            Actor::Operator(op("A")),
            Actor::Driver(acct("D")),
            Actor::Edge(site("S")),
        ] {
            assert_eq!(Actor::from_parts(a.role(), a.subject()), Ok(a));
        }
        assert_eq!(
            Actor::from_parts(Role::Edge, None),
            Err(BadActor::MissingSubject(Role::Edge))
        );
        assert_eq!(
            Actor::from_parts(Role::Admin, Some("x")),
            Err(BadActor::AdminWithSubject)
        );
        assert!(Actor::from_parts(Role::Driver, Some("a/b")).is_err());
        for r in Role::ALL {
            assert_eq!(r.as_str().parse::<Role>(), Ok(r));
        }
    }
}
