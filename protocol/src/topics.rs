//! Every MQTT topic name Voltline uses, and nothing else spells one.
//!
//! Charger ↔ edge (on the edge's embedded broker), one frame per message, QoS 1:
//! - `voltline/v1/piles/{pile_code}/up`: frames from the pile;
//! - `voltline/v1/piles/{pile_code}/down`: frames to the pile.
//!
//! Edge ↔ cloud (on the cloud's broker), JSON bodies from [`crate::sync`], QoS 1:
//! - `voltline/v1/sites/{site}/records`: record batches, up;
//! - `voltline/v1/sites/{site}/acks`: cumulative acknowledgements, down;
//! - `voltline/v1/sites/{site}/commands`: command envelopes, down;
//! - `voltline/v1/sites/{site}/status`: online/offline, up, retained (also the last will);
//! - `voltline/v1/sites/{site}/config`: "your configuration changed" notices, down.
//!
//! The `v1` is the contract version: a breaking change gets a `v2` topic tree, served side by
//! side while edges upgrade. Site ids and pile codes cannot contain `/`, `+` or `#` (their
//! types forbid it), so a topic built here always names exactly one site or pile.

use crate::domain::{PileCode, SiteId};

/// The root of every Voltline topic, with the contract version.
pub const ROOT: &str = "voltline/v1";

/// The share group cloud instances use, so that a clustered broker spreads sites over them.
pub const CLOUD_SHARE_GROUP: &str = "voltline-cloud";

/// Which way a pile topic carries frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PileChannel {
    /// Frames from the pile.
    Up,
    /// Frames to the pile.
    Down,
}

impl PileChannel {
    /// The last topic level.
    pub fn as_str(self) -> &'static str {
        match self {
            PileChannel::Up => "up",
            PileChannel::Down => "down",
        }
    }
}

/// The topic a pile publishes its frames to.
pub fn pile_up(pile: &PileCode) -> String {
    pile_topic(pile, PileChannel::Up)
}

/// A pile's topic for `channel`.
pub fn pile_topic(pile: &PileCode, channel: PileChannel) -> String {
    format!("{ROOT}/piles/{pile}/{}", channel.as_str())
}

/// The topic a pile receives frames on.
pub fn pile_down(pile: &PileCode) -> String {
    pile_topic(pile, PileChannel::Down)
}

/// The filter that matches every pile's uplink (for the edge).
pub fn all_piles_up() -> String {
    format!("{ROOT}/piles/+/up")
}

/// The pile and channel a pile topic names, or `None` if it is not one.
pub fn parse_pile_topic(topic: &str) -> Option<(PileCode, PileChannel)> {
    let rest = topic.strip_prefix(ROOT)?.strip_prefix("/piles/")?;
    let (pile, channel) = rest.split_once('/')?;
    let channel = match channel {
        "up" => PileChannel::Up,
        "down" => PileChannel::Down,
        _ => return None,
    };
    if pile.len() != 14 {
        return None;
    }
    Some((pile.parse().ok()?, channel))
}

/// The edge↔cloud channels of one site.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SiteChannel {
    /// Record batches, edge → cloud.
    Records,
    /// Cumulative acknowledgements, cloud → edge.
    Acks,
    /// Commands, cloud → edge.
    Commands,
    /// Online/offline status, edge → cloud, retained.
    Status,
    /// Configuration-changed notices, cloud → edge.
    Config,
}

impl SiteChannel {
    /// Every channel.
    pub const ALL: [SiteChannel; 5] = [
        SiteChannel::Records,
        SiteChannel::Acks,
        SiteChannel::Commands,
        SiteChannel::Status,
        SiteChannel::Config,
    ];

    /// The last topic level.
    pub fn as_str(self) -> &'static str {
        match self {
            SiteChannel::Records => "records",
            SiteChannel::Acks => "acks",
            SiteChannel::Commands => "commands",
            SiteChannel::Status => "status",
            SiteChannel::Config => "config",
        }
    }

    /// True for channels the edge publishes on (the others it subscribes to).
    pub fn is_uplink(self) -> bool {
        matches!(self, SiteChannel::Records | SiteChannel::Status)
    }

    fn parse(s: &str) -> Option<SiteChannel> {
        SiteChannel::ALL.into_iter().find(|c| c.as_str() == s)
    }
}

/// A site's topic for `channel`.
pub fn site(site: &SiteId, channel: SiteChannel) -> String {
    format!("{ROOT}/sites/{site}/{}", channel.as_str())
}

/// The filter matching `channel` for every site (for a single cloud instance).
pub fn all_sites(channel: SiteChannel) -> String {
    format!("{ROOT}/sites/+/{}", channel.as_str())
}

/// The shared-subscription filter matching `channel` for every site, so that several cloud
/// instances split the sites between them (MQTT 5 / Mosquitto `$share`).
pub fn shared_all_sites(channel: SiteChannel) -> String {
    format!("$share/{CLOUD_SHARE_GROUP}/{}", all_sites(channel))
}

/// The site and channel a site topic names, or `None` if it is not one.
pub fn parse_site_topic(topic: &str) -> Option<(SiteId, SiteChannel)> {
    let rest = topic.strip_prefix(ROOT)?.strip_prefix("/sites/")?;
    let (site, channel) = rest.split_once('/')?;
    Some((SiteId::new(site).ok()?, SiteChannel::parse(channel)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pile_topics_round_trip() {
        let pile: PileCode = "32010600019236".parse().unwrap();
        assert_eq!(pile_up(&pile), "voltline/v1/piles/32010600019236/up");
        assert_eq!(pile_down(&pile), "voltline/v1/piles/32010600019236/down");
        assert_eq!(
            parse_pile_topic(&pile_up(&pile)),
            Some((pile, PileChannel::Up))
        );
        assert_eq!(
            parse_pile_topic(&pile_down(&pile)),
            Some((pile, PileChannel::Down))
        );
    }

    #[test]
    fn foreign_or_malformed_pile_topics_are_rejected() {
        assert_eq!(parse_pile_topic("voltline/v1/piles/123/up"), None);
        assert_eq!(
            parse_pile_topic("voltline/v1/piles/3201060001923A/up"),
            None
        );
        assert_eq!(
            parse_pile_topic("voltline/v1/piles/32010600019236/sideways"),
            None
        );
        assert_eq!(
            parse_pile_topic("voltline/v2/piles/32010600019236/up"),
            None
        );
        assert_eq!(
            parse_pile_topic("voltline/v1/piles/32010600019236/up/x"),
            None
        );
    }

    #[test]
    fn site_topics_round_trip() {
        let s = SiteId::new("site-7").unwrap();
        for ch in SiteChannel::ALL {
            let t = site(&s, ch);
            assert_eq!(parse_site_topic(&t), Some((s.clone(), ch)));
        }
        assert_eq!(
            shared_all_sites(SiteChannel::Records),
            "$share/voltline-cloud/voltline/v1/sites/+/records"
        );
        assert_eq!(parse_site_topic("voltline/v1/sites/a+b/records"), None);
        assert_eq!(parse_site_topic("voltline/v1/sites/x/unknown"), None);
    }
}
