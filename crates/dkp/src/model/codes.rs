//! The stable codes of every refusal a client can be given, each with its one
//! string form (the `code` of the contract's error envelope).

/// A refusal's stable code.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Code {
    // What the request's body or path gets wrong.
    InvalidJson,
    InvalidField,
    InvalidAmount,
    UnknownReference,
    IdempotencyKeyReused,
    WebsocketRequired,
    EmptyImage,
    ImageMismatch,
    InvalidImport,
    // Where the request comes from.
    CrossOrigin,
    // What the state of things refuses.
    InsufficientPoints,
    BidTooLow,
    LotClosed,
    LotNotDue,
    UsernameTaken,
    SlugTaken,
    AlreadyMember,
    AlreadyLinked,
    MemberNameTaken,
    MemberInactive,
    CharacterTaken,
    PoolNameTaken,
    LastOwner,
    AlreadyReversed,
    NotReversible,
    DuplicateJob,
    NotFound,
    // Raids.
    KillOutsideRaid,
    RaidRequired,
}

impl Code {
    const ALL: [Code; 29] = [
        Code::InvalidJson,
        Code::InvalidField,
        Code::InvalidAmount,
        Code::UnknownReference,
        Code::IdempotencyKeyReused,
        Code::WebsocketRequired,
        Code::EmptyImage,
        Code::ImageMismatch,
        Code::InvalidImport,
        Code::CrossOrigin,
        Code::InsufficientPoints,
        Code::BidTooLow,
        Code::LotClosed,
        Code::LotNotDue,
        Code::UsernameTaken,
        Code::SlugTaken,
        Code::AlreadyMember,
        Code::AlreadyLinked,
        Code::MemberNameTaken,
        Code::MemberInactive,
        Code::CharacterTaken,
        Code::PoolNameTaken,
        Code::LastOwner,
        Code::AlreadyReversed,
        Code::NotReversible,
        Code::DuplicateJob,
        Code::NotFound,
        Code::KillOutsideRaid,
        Code::RaidRequired,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Code::InvalidJson => "invalid_json",
            Code::InvalidField => "invalid_field",
            Code::InvalidAmount => "invalid_amount",
            Code::UnknownReference => "unknown_reference",
            Code::IdempotencyKeyReused => "idempotency_key_reused",
            Code::WebsocketRequired => "websocket_required",
            Code::EmptyImage => "empty_image",
            Code::ImageMismatch => "image_mismatch",
            Code::InvalidImport => "invalid_import",
            Code::CrossOrigin => "cross_origin",
            Code::InsufficientPoints => "insufficient_points",
            Code::BidTooLow => "bid_too_low",
            Code::LotClosed => "lot_closed",
            Code::LotNotDue => "lot_not_due",
            Code::UsernameTaken => "username_taken",
            Code::SlugTaken => "slug_taken",
            Code::AlreadyMember => "already_member",
            Code::AlreadyLinked => "already_linked",
            Code::MemberNameTaken => "member_name_taken",
            Code::MemberInactive => "member_inactive",
            Code::CharacterTaken => "character_taken",
            Code::PoolNameTaken => "pool_name_taken",
            Code::LastOwner => "last_owner",
            Code::AlreadyReversed => "already_reversed",
            Code::NotReversible => "not_reversible",
            Code::DuplicateJob => "duplicate_job",
            Code::NotFound => "not_found",
            Code::KillOutsideRaid => "kill_outside_raid",
            Code::RaidRequired => "raid_required",
        }
    }

    pub fn parse(text: &str) -> Option<Code> {
        Code::ALL.into_iter().find(|code| code.as_str() == text)
    }

    /// What a conflict of this code tells the client.
    pub fn conflict_message(self) -> &'static str {
        match self {
            Code::UsernameTaken => "that username is taken",
            Code::SlugTaken => "that slug is taken",
            Code::AlreadyMember => "that user is already a member of this guild",
            Code::AlreadyLinked => "that member is linked to an account already",
            Code::MemberNameTaken => "this guild already has a member of that name",
            Code::MemberInactive => {
                "a member taken off the roster can be given or charged nothing; bring them back first"
            }
            Code::CharacterTaken => "this guild already has a character of that name on that realm",
            Code::PoolNameTaken => "this guild already has a pool of that name",
            Code::LastOwner => "a guild keeps at least one owner",
            Code::AlreadyReversed => "that entry was already reversed",
            Code::NotReversible => "a reversal cannot itself be reversed",
            _ => "the request conflicts with the current state",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_reads_back_from_its_one_string() {
        for code in Code::ALL {
            assert_eq!(Code::parse(code.as_str()), Some(code));
        }
        let mut names: Vec<&str> = Code::ALL.iter().map(|c| c.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), Code::ALL.len(), "no two codes share a string");
    }
}
