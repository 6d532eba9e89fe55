//! Guild roles and what each may do. `owner` > `officer` > `member`.

/// A member's role in one guild.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    Member,
    Officer,
    Owner,
}

/// What a caller asks to do inside a guild.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Read members, standings, entries, lots.
    Read,
    Bid,
    AddMember,
    /// Award, adjust, transfer, reverse.
    MovePoints,
    RunLots,
    /// Create raids, record their attendance and kills, award them.
    RunRaids,
    ReadAudit,
    ManageRoles,
    ManagePools,
    /// Upload the guild's logo and lot icons.
    UploadImages,
}

impl Role {
    pub fn parse(text: &str) -> Option<Role> {
        match text {
            "member" => Some(Role::Member),
            "officer" => Some(Role::Officer),
            "owner" => Some(Role::Owner),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Member => "member",
            Role::Officer => "officer",
            Role::Owner => "owner",
        }
    }

    /// Whether this role may perform `action`.
    pub fn may(self, action: Action) -> bool {
        let needed = match action {
            Action::Read | Action::Bid => Role::Member,
            Action::AddMember
            | Action::MovePoints
            | Action::RunLots
            | Action::RunRaids
            | Action::ReadAudit
            | Action::UploadImages => Role::Officer,
            Action::ManageRoles | Action::ManagePools => Role::Owner,
        };
        self >= needed
    }

    /// Whether this role may add a new member with role `new_role`: officers
    /// add plain members, owners add anyone.
    pub fn may_add_with(self, new_role: Role) -> bool {
        self.may(Action::AddMember) && (new_role == Role::Member || self.may(Action::ManageRoles))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn members_read_and_bid_but_move_no_points() {
        assert!(Role::Member.may(Action::Read));
        assert!(Role::Member.may(Action::Bid));
        assert!(!Role::Member.may(Action::MovePoints));
        assert!(!Role::Member.may(Action::ReadAudit));
    }

    #[test]
    fn officers_move_points_but_manage_neither_roles_nor_pools() {
        assert!(Role::Officer.may(Action::MovePoints));
        assert!(Role::Officer.may(Action::RunLots));
        assert!(!Role::Officer.may(Action::ManageRoles));
        assert!(!Role::Officer.may(Action::ManagePools));
    }

    #[test]
    fn officers_run_raids_and_members_only_read_them() {
        assert!(Role::Officer.may(Action::RunRaids));
        assert!(Role::Owner.may(Action::RunRaids));
        assert!(!Role::Member.may(Action::RunRaids));
    }

    #[test]
    fn officers_and_owners_upload_images_and_members_do_not() {
        assert!(Role::Officer.may(Action::UploadImages));
        assert!(Role::Owner.may(Action::UploadImages));
        assert!(!Role::Member.may(Action::UploadImages));
    }

    #[test]
    fn officers_add_only_plain_members_and_owners_add_anyone() {
        assert!(Role::Officer.may_add_with(Role::Member));
        assert!(!Role::Officer.may_add_with(Role::Officer));
        assert!(Role::Owner.may_add_with(Role::Owner));
        assert!(!Role::Member.may_add_with(Role::Member));
    }

    #[test]
    fn roles_parse_from_their_names_only() {
        for role in [Role::Member, Role::Officer, Role::Owner] {
            assert_eq!(Role::parse(role.as_str()), Some(role));
        }
        assert_eq!(Role::parse("Owner"), None);
        assert_eq!(Role::parse("admin"), None);
    }
}
