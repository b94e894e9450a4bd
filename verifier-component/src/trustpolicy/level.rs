//! Verification levels, validations and actions (`trust-store-trust-policy.md`
//! §Signature Verification details and §Custom Verification Level).
//!
//! ```text
//! |            | Integrity | Authenticity | Authentic timestamp | Expiry | Revocation |
//! | strict     | enforced  | enforced     | enforced            | enforced | enforced |
//! | permissive | enforced  | enforced     | logged              | logged | logged     |
//! | audit      | enforced  | logged       | logged              | logged | logged     |
//! | skip       | skipped   | skipped      | skipped             | skipped | skipped   |
//! ```

use core::fmt;

use serde::{Deserialize, Serialize};

/// A predefined signature verification level.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// Every validation enforced.
    Strict,
    /// Integrity and authenticity enforced, the rest logged.
    Permissive,
    /// Only integrity enforced.
    Audit,
    /// No verification at all.
    Skip,
}

impl Level {
    /// The level named in a trust policy (`strict`, `permissive`, `audit`, `skip`).
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "strict" => Some(Self::Strict),
            "permissive" => Some(Self::Permissive),
            "audit" => Some(Self::Audit),
            "skip" => Some(Self::Skip),
            _ => None,
        }
    }

    /// The level's name as written in a trust policy.
    pub fn name(self) -> &'static str {
        match self {
            Self::Strict => "strict",
            Self::Permissive => "permissive",
            Self::Audit => "audit",
            Self::Skip => "skip",
        }
    }

    /// The action this level takes for `check`.
    pub fn action(self, check: Check) -> Action {
        use Action::{Enforce, Log, Skip};
        match (self, check) {
            (Self::Skip, _) => Skip,
            (_, Check::Integrity) => Enforce,
            (Self::Strict, _) => Enforce,
            (Self::Permissive, Check::Authenticity) => Enforce,
            (Self::Permissive, _) => Log,
            (Self::Audit, _) => Log,
        }
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The five validations of a signature, in the order notation runs them
/// (integrity, authenticity, expiry, authentic timestamp, revocation).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Check {
    /// The artifact and signature are unaltered.
    #[serde(rename = "integrity")]
    Integrity,
    /// The signature comes from a trusted identity.
    #[serde(rename = "authenticity")]
    Authenticity,
    /// The signature was made while the certificates were valid.
    #[serde(rename = "authenticTimestamp")]
    AuthenticTimestamp,
    /// The signature's own expiry has not passed.
    #[serde(rename = "expiry")]
    Expiry,
    /// No certificate in the chain is revoked.
    #[serde(rename = "revocation")]
    Revocation,
}

impl Check {
    /// All five, in the trust policy's table order.
    pub const ALL: [Self; 5] = [
        Self::Integrity,
        Self::Authenticity,
        Self::AuthenticTimestamp,
        Self::Expiry,
        Self::Revocation,
    ];

    /// The key used in trust policy `override` maps and notation's messages
    /// (`authenticTimestamp`).
    pub fn policy_name(self) -> &'static str {
        match self {
            Self::Integrity => "integrity",
            Self::Authenticity => "authenticity",
            Self::AuthenticTimestamp => "authenticTimestamp",
            Self::Expiry => "expiry",
            Self::Revocation => "revocation",
        }
    }

    /// The validation's name in the specification's prose (`authentic-timestamp`).
    pub fn spec_name(self) -> &'static str {
        match self {
            Self::AuthenticTimestamp => "authentic-timestamp",
            other => other.policy_name(),
        }
    }

    /// The check an `override` key names.
    pub fn from_policy_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.policy_name() == name)
    }
}

impl fmt::Display for Check {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.policy_name())
    }
}

/// What a failed validation does to the verification.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// The failure fails the verification.
    Enforce,
    /// The failure is reported and verification continues.
    Log,
    /// The validation is not performed.
    Skip,
}

impl Action {
    /// From an `override` value.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "enforce" => Some(Self::Enforce),
            "log" => Some(Self::Log),
            "skip" => Some(Self::Skip),
            _ => None,
        }
    }

    /// The name used in `override` maps.
    pub fn name(self) -> &'static str {
        match self {
            Self::Enforce => "enforce",
            Self::Log => "log",
            Self::Skip => "skip",
        }
    }
}

/// The action for each validation once the level and its overrides are applied.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actions {
    /// Integrity.
    pub integrity: Action,
    /// Authenticity.
    pub authenticity: Action,
    /// Authentic timestamp.
    #[serde(rename = "authenticTimestamp")]
    pub authentic_timestamp: Action,
    /// Expiry.
    pub expiry: Action,
    /// Revocation.
    pub revocation: Action,
}

impl Actions {
    /// The actions of a predefined level.
    pub fn of_level(level: Level) -> Self {
        Self {
            integrity: level.action(Check::Integrity),
            authenticity: level.action(Check::Authenticity),
            authentic_timestamp: level.action(Check::AuthenticTimestamp),
            expiry: level.action(Check::Expiry),
            revocation: level.action(Check::Revocation),
        }
    }

    /// The action for `check`.
    pub fn get(&self, check: Check) -> Action {
        match check {
            Check::Integrity => self.integrity,
            Check::Authenticity => self.authenticity,
            Check::AuthenticTimestamp => self.authentic_timestamp,
            Check::Expiry => self.expiry,
            Check::Revocation => self.revocation,
        }
    }

    /// Replace the action for `check`.
    pub fn set(&mut self, check: Check, action: Action) {
        match check {
            Check::Integrity => self.integrity = action,
            Check::Authenticity => self.authenticity = action,
            Check::AuthenticTimestamp => self.authentic_timestamp = action,
            Check::Expiry => self.expiry = action,
            Check::Revocation => self.revocation = action,
        }
    }
}

/// When the timestamp countersignature is verified (`signatureVerification.verifyTimestamp`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum VerifyTimestamp {
    /// Always (the default).
    #[default]
    #[serde(rename = "always")]
    Always,
    /// Only when a certificate of the signing chain has expired at verification time.
    #[serde(rename = "afterCertExpiry")]
    AfterCertExpiry,
}

impl VerifyTimestamp {
    /// The name used in trust policies.
    pub fn name(self) -> &'static str {
        match self {
            Self::Always => "always",
            Self::AfterCertExpiry => "afterCertExpiry",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_level_and_check_has_the_specified_action() {
        use Action::{Enforce as E, Log as L, Skip as S};
        let table = [
            (Level::Strict, [E, E, E, E, E]),
            (Level::Permissive, [E, E, L, L, L]),
            (Level::Audit, [E, L, L, L, L]),
            (Level::Skip, [S, S, S, S, S]),
        ];
        for (level, actions) in table {
            for (check, action) in Check::ALL.into_iter().zip(actions) {
                assert_eq!(level.action(check), action, "{level} {check}");
            }
        }
    }
}
