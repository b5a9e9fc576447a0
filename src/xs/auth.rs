//! Auth methods (POD "AUTH METHODS"): authenticate, auth_enable, auth_disable, the
//! user_* and role_* calls. Names and passwords go out as text (size limits
//! of POD "ERRORS"); every error but authenticate's has source `rpc`. The
//! token an authenticate returns is stored on the runtime side
//! (src/etcd/auth.rs).

use super::callbacks;
use crate::etcd::call::Call;
use crate::etcd::pb::authpb::{self, permission::Type as PermType};
use crate::etcd::pb::etcdserverpb as rpc;
use crate::perl::{Perl, Sv, XsResult};

use super::args::{self, Res};

fn submit(p: &Perl, id: u64, call: Call, cb: args::Reply) -> XsResult {
    callbacks::submit(p, id, call, cb)?;
    Ok(None)
}

/// `undef` means a single key; any other value (`"\0"`: every key from
/// `key` on) is the range end as given.
fn range_end(p: &Perl, sv: Sv) -> Res<Vec<u8>> {
    if p.is_defined(sv) {
        args::key(p, sv)
    } else {
        Ok(Vec::new())
    }
}

pub fn authenticate<'a>(p: &Perl<'a>, a: &[Sv<'a>]) -> XsResult {
    let (id, cb) = args::request_form(
        p,
        a,
        4,
        "authenticate(client, username, password, callback)",
    )?;
    let r = rpc::AuthenticateRequest {
        name: args::name_text(p, a[1])?,
        password: args::password_text(p, a[2])?,
    };
    callbacks::submit(p, id, Call::Authenticate(r), cb)?;
    Ok(None)
}

pub fn auth_enable<'a>(p: &Perl<'a>, a: &[Sv<'a>]) -> XsResult {
    let (id, cb) = args::request_form(p, a, 2, "auth_enable(client, callback)")?;
    submit(p, id, Call::AuthEnable(rpc::AuthEnableRequest {}), cb)
}

pub fn auth_disable<'a>(p: &Perl<'a>, a: &[Sv<'a>]) -> XsResult {
    let (id, cb) = args::request_form(p, a, 2, "auth_disable(client, callback)")?;
    submit(p, id, Call::AuthDisable(rpc::AuthDisableRequest {}), cb)
}

pub fn user_add<'a>(p: &Perl<'a>, a: &[Sv<'a>]) -> XsResult {
    let (id, cb) = args::request_form(p, a, 4, "user_add(client, username, password, callback)")?;
    let r = rpc::AuthUserAddRequest {
        name: args::name_text(p, a[1])?,
        password: args::password_text(p, a[2])?,
        options: Some(authpb::UserAddOptions { no_password: false }),
        ..Default::default()
    };
    submit(p, id, Call::UserAdd(r), cb)
}

pub fn user_delete<'a>(p: &Perl<'a>, a: &[Sv<'a>]) -> XsResult {
    let (id, cb) = args::request_form(p, a, 3, "user_delete(client, username, callback)")?;
    let name = args::name_text(p, a[1])?;
    submit(
        p,
        id,
        Call::UserDelete(rpc::AuthUserDeleteRequest { name }),
        cb,
    )
}

pub fn user_change_password<'a>(p: &Perl<'a>, a: &[Sv<'a>]) -> XsResult {
    let (id, cb) = args::request_form(
        p,
        a,
        4,
        "user_change_password(client, username, password, callback)",
    )?;
    let r = rpc::AuthUserChangePasswordRequest {
        name: args::name_text(p, a[1])?,
        password: args::password_text(p, a[2])?,
        ..Default::default()
    };
    submit(p, id, Call::UserChangePassword(r), cb)
}

pub fn user_get<'a>(p: &Perl<'a>, a: &[Sv<'a>]) -> XsResult {
    let (id, cb) = args::request_form(p, a, 3, "user_get(client, username, callback)")?;
    let name = args::name_text(p, a[1])?;
    submit(p, id, Call::UserGet(rpc::AuthUserGetRequest { name }), cb)
}

pub fn user_list<'a>(p: &Perl<'a>, a: &[Sv<'a>]) -> XsResult {
    let (id, cb) = args::request_form(p, a, 2, "user_list(client, callback)")?;
    submit(p, id, Call::UserList(rpc::AuthUserListRequest {}), cb)
}

/// The (user, role) pair of user_grant_role / user_revoke_role.
fn user_and_role(p: &Perl, a: &[Sv], usage: &str) -> Res<(u64, args::Reply, String, String)> {
    let (id, cb) = args::request_form(p, a, 4, usage)?;
    Ok((id, cb, args::name_text(p, a[1])?, args::name_text(p, a[2])?))
}

pub fn user_grant_role<'a>(p: &Perl<'a>, a: &[Sv<'a>]) -> XsResult {
    let (id, cb, user, role) = user_and_role(
        p,
        a,
        "user_grant_role(client, username, role_name, callback)",
    )?;
    submit(
        p,
        id,
        Call::UserGrantRole(rpc::AuthUserGrantRoleRequest { user, role }),
        cb,
    )
}

pub fn user_revoke_role<'a>(p: &Perl<'a>, a: &[Sv<'a>]) -> XsResult {
    let (id, cb, name, role) = user_and_role(
        p,
        a,
        "user_revoke_role(client, username, role_name, callback)",
    )?;
    submit(
        p,
        id,
        Call::UserRevokeRole(rpc::AuthUserRevokeRoleRequest { name, role }),
        cb,
    )
}

pub fn role_add<'a>(p: &Perl<'a>, a: &[Sv<'a>]) -> XsResult {
    let (id, cb) = args::request_form(p, a, 3, "role_add(client, role_name, callback)")?;
    let name = args::name_text(p, a[1])?;
    submit(p, id, Call::RoleAdd(rpc::AuthRoleAddRequest { name }), cb)
}

pub fn role_delete<'a>(p: &Perl<'a>, a: &[Sv<'a>]) -> XsResult {
    let (id, cb) = args::request_form(p, a, 3, "role_delete(client, role_name, callback)")?;
    let role = args::name_text(p, a[1])?;
    submit(
        p,
        id,
        Call::RoleDelete(rpc::AuthRoleDeleteRequest { role }),
        cb,
    )
}

pub fn role_get<'a>(p: &Perl<'a>, a: &[Sv<'a>]) -> XsResult {
    let (id, cb) = args::request_form(p, a, 3, "role_get(client, role_name, callback)")?;
    let role = args::name_text(p, a[1])?;
    submit(p, id, Call::RoleGet(rpc::AuthRoleGetRequest { role }), cb)
}

pub fn role_list<'a>(p: &Perl<'a>, a: &[Sv<'a>]) -> XsResult {
    let (id, cb) = args::request_form(p, a, 2, "role_list(client, callback)")?;
    submit(p, id, Call::RoleList(rpc::AuthRoleListRequest {}), cb)
}

/// `role_grant_permission($role, $perm_type, $key, $range_end, $cb)`:
/// `WRITE`/`write` and `READWRITE`/`readwrite` are recognised, any other
/// word means READ (as in the reference).
pub fn role_grant_permission<'a>(p: &Perl<'a>, a: &[Sv<'a>]) -> XsResult {
    let (id, cb) = args::request_form(
        p,
        a,
        6,
        "role_grant_permission(client, role_name, perm_type, key, range_end, callback)",
    )?;
    let name = args::name_text(p, a[1])?;
    let perm_type = match p.text(a[2]).as_str() {
        "WRITE" | "write" => PermType::Write,
        "READWRITE" | "readwrite" => PermType::Readwrite,
        _ => PermType::Read,
    };
    let perm = authpb::Permission {
        perm_type: perm_type as i32,
        key: args::key(p, a[3])?,
        range_end: range_end(p, a[4])?,
    };
    let r = rpc::AuthRoleGrantPermissionRequest {
        name,
        perm: Some(perm),
    };
    submit(p, id, Call::RoleGrantPermission(r), cb)
}

pub fn role_revoke_permission<'a>(p: &Perl<'a>, a: &[Sv<'a>]) -> XsResult {
    let (id, cb) = args::request_form(
        p,
        a,
        5,
        "role_revoke_permission(client, role_name, key, range_end, callback)",
    )?;
    let r = rpc::AuthRoleRevokePermissionRequest {
        role: args::name_text(p, a[1])?,
        key: args::key(p, a[2])?,
        range_end: range_end(p, a[3])?,
    };
    submit(p, id, Call::RoleRevokePermission(r), cb)
}
