//! The billing dimensions of a Bedrock call (shared/reference/bedrock-pricing.md): the
//! token classes a card prices, the endpoint scope, service tier and latency mode, the
//! guardrail meters, and the flags a row carries about how its cost was found. Each is a
//! small `Copy` enum whose `ALL` list drives parsing, files and metrics alike.

/// A field-less enum with wire names (what `named_enum!` declares).
pub trait Named: Copy + 'static {
    const ALL: &'static [Self];
    fn as_str(self) -> &'static str;
    fn parse(s: &str) -> Option<Self>;
    fn index(self) -> usize;
    fn names() -> String;
}

/// Declares a field-less enum with its wire names and an `ALL` list.
macro_rules! named_enum {
    ($(#[$m:meta])* $name:ident { $($(#[$vm:meta])* $v:ident = $s:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name { $($(#[$vm])* $v),+ }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$v),+];

            /// The name used in files, rows and metrics.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$v => $s),+ }
            }

            /// Parses a name (exact, lower case).
            pub fn parse(s: &str) -> Option<$name> {
                match s { $($s => Some($name::$v),)+ _ => None }
            }

            /// Position in [`Self::ALL`].
            pub fn index(self) -> usize {
                self as usize
            }

            /// The names, comma-separated (for error messages).
            pub fn names() -> String {
                [$($s),+].join(", ")
            }
        }

        impl Named for $name {
            const ALL: &'static [$name] = $name::ALL;
            fn as_str(self) -> &'static str { $name::as_str(self) }
            fn parse(s: &str) -> Option<$name> { $name::parse(s) }
            fn index(self) -> usize { $name::index(self) }
            fn names() -> String { $name::names() }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

named_enum!(
    /// Token classes with their own price line.
    Class {
        Input = "input",
        Output = "output",
        CacheRead = "cache_read",
        CacheWrite5m = "cache_write_5m",
        CacheWrite1h = "cache_write_1h",
    }
);

/// Number of token classes.
pub(crate) const CLASSES: usize = 5;

named_enum!(
    /// How the model was addressed: a `global.` profile, a geographic profile (`us.`,
    /// `eu.`, ...) or a bare in-region id.
    Scope {
        Global = "global",
        Geo = "geo",
        InRegion = "in_region",
    }
);

named_enum!(
    /// Bedrock's service tier (`serviceTier.type`).
    Tier {
        Default = "default",
        Priority = "priority",
        Flex = "flex",
        Reserved = "reserved",
    }
);

named_enum!(
    /// Bedrock's latency mode (`performanceConfig.latency`).
    Latency {
        Standard = "standard",
        Optimized = "optimized",
    }
);

named_enum!(
    /// What a price file can scale a card by: a scope, a tier, a latency mode, or the
    /// long-context rate (the `[models."id".factors]` keys).
    Factor {
        Global = "global",
        Geo = "geo",
        InRegion = "in_region",
        Default = "default",
        Priority = "priority",
        Flex = "flex",
        Reserved = "reserved",
        Standard = "standard",
        Optimized = "optimized",
        Long = "long",
    }
);

/// Number of factor keys.
pub(crate) const FACTORS: usize = 10;

impl Factor {
    pub(crate) fn of_scope(s: Scope) -> Factor {
        match s {
            Scope::Global => Factor::Global,
            Scope::Geo => Factor::Geo,
            Scope::InRegion => Factor::InRegion,
        }
    }

    pub(crate) fn of_tier(t: Tier) -> Factor {
        match t {
            Tier::Default => Factor::Default,
            Tier::Priority => Factor::Priority,
            Tier::Flex => Factor::Flex,
            Tier::Reserved => Factor::Reserved,
        }
    }

    pub(crate) fn of_latency(l: Latency) -> Factor {
        match l {
            Latency::Standard => Factor::Standard,
            Latency::Optimized => Factor::Optimized,
        }
    }
}

named_enum!(
    /// Per-unit meters besides tokens: guardrail text units, priced per 1,000 units
    /// (the names are the `[meters]` keys of a price file).
    Meter {
        ContentPolicy = "guardrail_content_policy",
        TopicPolicy = "guardrail_topic_policy",
        WordPolicy = "guardrail_word_policy",
        SensitiveInformationPolicy = "guardrail_sensitive_information_policy",
        SensitiveInformationPolicyFree = "guardrail_sensitive_information_policy_free",
        ContextualGroundingPolicy = "guardrail_contextual_grounding_policy",
        ContentPolicyImage = "guardrail_content_policy_image",
        AutomatedReasoningPolicy = "guardrail_automated_reasoning_policy",
    }
);

/// Number of meters.
pub(crate) const METERS: usize = 8;

impl Meter {
    /// The field of `GuardrailUsage` (botocore) that counts this meter's units.
    pub(crate) fn usage_field(self) -> &'static str {
        match self {
            Meter::ContentPolicy => "contentPolicyUnits",
            Meter::TopicPolicy => "topicPolicyUnits",
            Meter::WordPolicy => "wordPolicyUnits",
            Meter::SensitiveInformationPolicy => "sensitiveInformationPolicyUnits",
            Meter::SensitiveInformationPolicyFree => "sensitiveInformationPolicyFreeUnits",
            Meter::ContextualGroundingPolicy => "contextualGroundingPolicyUnits",
            Meter::ContentPolicyImage => "contentPolicyImageUnits",
            Meter::AutomatedReasoningPolicy => "automatedReasoningPolicyUnits",
        }
    }
}

named_enum!(
    /// Why a cost is missing, assumed or adjusted (the `cost_flags` column).
    Flag {
        /// No cost: see the other flags for why.
        Unpriced = "unpriced",
        /// No price table entry for the model.
        UnknownModel = "unknown_model",
        /// An application-inference-profile ARN with no `[aliases]` entry.
        UnmappedProfile = "unmapped_profile",
        /// The entry has no price for the tier the call was served at.
        TierUnpriced = "tier_unpriced",
        /// The entry has no price for the latency mode the call was served at.
        LatencyUnpriced = "latency_unpriced",
        /// Tokens of a class (cache read, a cache-write TTL) the entry has no price for.
        ClassUnpriced = "class_unpriced",
        /// Guardrail units of a meter with no price.
        GuardrailUnpriced = "guardrail_unpriced",
        /// The response carried no usage.
        NoUsage = "no_usage",
        /// A stream ended before its `metadata` event (usage unknown).
        StreamCutBeforeUsage = "stream_cut_before_usage",
        /// Cache writes without `cacheDetails`: priced at the 5-minute rate.
        CacheTtlAssumed = "cache_ttl_assumed",
        /// The response did not report its service tier (taken from the request, else default).
        TierAssumed = "tier_assumed",
        /// The response did not report its latency mode (taken from the request, else standard).
        LatencyAssumed = "latency_assumed",
        /// A figure the price file marks `unconfirmed` was used.
        PriceUnconfirmed = "price_unconfirmed",
        /// The exact cost had digits below 1e-12 USD: rounded half to even.
        CostRounded = "cost_rounded",
        /// An operation AWS does not bill (CountTokens): the cost is an exact zero.
        NotBilled = "not_billed",
    }
);

/// A set of [`Flag`]s (a bit each).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Flags(pub u32);

impl Flags {
    pub(crate) fn set(&mut self, f: Flag) {
        self.0 |= 1 << f.index();
    }

    pub(crate) fn has(self, f: Flag) -> bool {
        self.0 & (1 << f.index()) != 0
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    pub(crate) fn union(self, other: Flags) -> Flags {
        Flags(self.0 | other.0)
    }

    /// The flags in declaration order.
    pub(crate) fn iter(self) -> impl Iterator<Item = Flag> {
        Flag::ALL.iter().copied().filter(move |f| self.has(*f))
    }

    /// `unpriced,unknown_model`, or `None` when empty (the column's value).
    pub fn to_column(self) -> Option<String> {
        if self.is_empty() {
            return None;
        }
        let mut s = String::with_capacity(32);
        for f in self.iter() {
            if !s.is_empty() {
                s.push(',');
            }
            s.push_str(f.as_str());
        }
        Some(s)
    }

    /// Reads a column value back; unknown names are ignored.
    pub(crate) fn from_column(s: &str) -> Flags {
        let mut out = Flags::default();
        for f in s.split(',').filter_map(|n| Flag::parse(n.trim())) {
            out.set(f);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for t in Tier::ALL {
            assert_eq!(Tier::parse(t.as_str()), Some(*t));
        }
        assert_eq!(Class::ALL.len(), CLASSES);
        assert_eq!(Meter::ALL.len(), METERS);
        assert_eq!(Factor::ALL.len(), FACTORS);
        assert!(Flag::ALL.len() <= 32);
        let mut f = Flags::default();
        f.set(Flag::Unpriced);
        f.set(Flag::UnknownModel);
        assert_eq!(f.to_column().as_deref(), Some("unpriced,unknown_model"));
        assert_eq!(Flags::from_column("unknown_model,unpriced,bogus"), f);
        assert_eq!(Flags::default().to_column(), None);
    }
}
