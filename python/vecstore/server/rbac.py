"""MilvusService RPCs for users, roles and privileges (pymilvus's ``create_user``, ``grant_role``,
``grant_privilege`` ...), over :class:`vecstore.server.auth.CredentialStore`.

A mixin of :class:`vecstore.server.servicer.Servicer` (``self._auth`` is the store). The caller
(:data:`vecstore.server.access.CURRENT_USER`) must be root or have the ``admin`` role, or hold
the Milvus privilege named below as a Global grant, except that a user may read itself
(``describe_user``), the roles it has (``describe_role``) and change its own password, giving the
old one. Passwords arrive base64-encoded, as pymilvus sends them.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from pymilvus.grpc_gen import milvus_pb2

from vecstore.errors import InvalidArgument
from vecstore.server.access import CURRENT_USER, PERMISSION_DENIED, PRIVILEGES
from vecstore.server.auth import GROUPS, CredentialStore, PermissionDenied
from vecstore.server.errors import OK, guard


def _password(raw: str | bytes) -> str:
    try:
        return base64.b64decode(raw, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise InvalidArgument("the password must be base64-encoded UTF-8 (as pymilvus sends "
                              "it)") from None


# Privilege names a group may hold: every one a call is checked against, and the RBAC ones.
KNOWN_PRIVILEGES = frozenset(
    {p for p, _ in PRIVILEGES.values()}.union(*GROUPS.values()) | {
        "CreateOwnership", "DropOwnership", "SelectOwnership", "ManageOwnership", "UpdateUser",
        "SelectUser", "CreatePrivilegeGroup", "DropPrivilegeGroup", "ListPrivilegeGroups",
        "OperatePrivilegeGroup", "CreateResourceGroup", "DropResourceGroup",
        "DescribeResourceGroup", "ListResourceGroups", "TransferNode", "TransferReplica",
        "UpdateResourceGroups", "BackupRBAC", "RestoreRBAC", "All"})


class RbacRpcs:
    _auth: CredentialStore

    def _require(self, privilege: str) -> str:
        user = CURRENT_USER.get()
        if not self._auth.allowed(user, privilege, "default", "*"):
            raise PermissionDenied(f"Privilege{privilege}: permission deny to {user} (only "
                                   "root, the admin role or a Global grant of it may)",
                                   code=PERMISSION_DENIED)
        return user

    @guard
    def CreateCredential(self, request: Any, context: Any) -> Any:
        self._require("CreateOwnership")
        self._auth.create_user(request.username, _password(request.password),
                               request.description)
        return OK

    @guard
    def UpdateCredential(self, request: Any, context: Any) -> Any:
        user = CURRENT_USER.get()
        target = request.username
        admin = self._auth.allowed(user, "UpdateUser", "default", "*")
        if target != user and not admin:
            self._require("UpdateUser")
        if not request.newPassword and not request.oldPassword:
            self._auth.update_description(target, request.description)
            return OK
        old = None if admin and target != user else _password(request.oldPassword)
        self._auth.update_password(target, old, _password(request.newPassword),
                                   request.description or None)
        return OK

    @guard
    def DeleteCredential(self, request: Any, context: Any) -> Any:
        self._require("DropOwnership")
        self._auth.drop_user(request.username)
        return OK

    @guard
    def ListCredUsers(self, request: Any, context: Any) -> Any:
        self._require("SelectUser")
        return milvus_pb2.ListCredUsersResponse(status=OK, usernames=self._auth.list_users())

    @guard
    def SelectUser(self, request: Any, context: Any) -> Any:
        user = CURRENT_USER.get()
        name = request.user.name if request.HasField("user") else ""
        if name != user:
            self._require("SelectUser")
        names = [name] if name else self._auth.list_users()
        results = []
        for n in names:
            info = self._auth.describe_user(n)
            if info is None:
                continue
            roles = ([milvus_pb2.RoleEntity(name=r) for r in info["roles"]]
                     if request.include_role_info else [])
            results.append(milvus_pb2.UserResult(user=milvus_pb2.UserEntity(name=n), roles=roles,
                                                 description=info["description"]))
        return milvus_pb2.SelectUserResponse(status=OK, results=results)

    @guard
    def CreateRole(self, request: Any, context: Any) -> Any:
        self._require("CreateOwnership")
        self._auth.create_role(request.entity.name, request.entity.description)
        return OK

    @guard
    def AlterRole(self, request: Any, context: Any) -> Any:
        self._require("CreateOwnership")
        self._auth.alter_role(request.role_name, request.description)
        return OK

    @guard
    def DropRole(self, request: Any, context: Any) -> Any:
        self._require("DropOwnership")
        self._auth.drop_role(request.role_name, bool(request.force_drop))
        return OK

    @guard
    def OperateUserRole(self, request: Any, context: Any) -> Any:
        self._require("ManageOwnership")
        if request.type == milvus_pb2.AddUserToRole:
            self._auth.grant_role(request.username, request.role_name)
        else:
            self._auth.revoke_role(request.username, request.role_name)
        return OK

    def _may_read_role(self, role: str) -> None:
        user = CURRENT_USER.get()
        if role and role in self._auth.roles_of(user):
            return
        self._require("SelectOwnership")

    @guard
    def SelectRole(self, request: Any, context: Any) -> Any:
        name = request.role.name if request.HasField("role") else ""
        self._may_read_role(name)
        results = []
        for role, description, users in self._auth.list_roles():
            if name and role != name:
                continue
            ents = ([milvus_pb2.UserEntity(name=u) for u in users]
                    if request.include_user_info else [])
            results.append(milvus_pb2.RoleResult(
                role=milvus_pb2.RoleEntity(name=role, description=description), users=ents))
        return milvus_pb2.SelectRoleResponse(status=OK, results=results)

    @guard
    def OperatePrivilege(self, request: Any, context: Any) -> Any:
        user = self._require("ManageOwnership")
        e = request.entity
        privilege = e.grantor.privilege.name
        if request.type == milvus_pb2.Grant:
            self._auth.grant(e.role.name, e.object.name, e.object_name, e.db_name, privilege,
                             user)
        else:
            self._auth.revoke(e.role.name, e.object.name, e.object_name, e.db_name, privilege)
        return OK

    @guard
    def OperatePrivilegeV2(self, request: Any, context: Any) -> Any:
        user = self._require("ManageOwnership")
        privilege = request.grantor.privilege.name
        name = request.collection_name or "*"
        obj = "Global" if name == "*" and privilege not in _COLLECTION_LEVEL else "Collection"
        if request.type == milvus_pb2.Grant:
            self._auth.grant(request.role.name, obj, name, request.db_name or "default",
                             privilege, user)
        else:
            self._auth.revoke(request.role.name, "", name, request.db_name or "default",
                              privilege)
        return OK

    @guard
    def SelectGrant(self, request: Any, context: Any) -> Any:
        e = request.entity
        role = e.role.name
        self._may_read_role(role)
        if not self._auth.role_exists(role):
            raise InvalidArgument(f"role {role} not found")
        out = []
        for g in self._auth.grants(role, e.db_name):
            if e.HasField("object") and e.object.name and g["object"] != e.object.name:
                continue
            if e.object_name and g["object_name"] != e.object_name:
                continue
            out.append(milvus_pb2.GrantEntity(
                role=milvus_pb2.RoleEntity(name=role),
                object=milvus_pb2.ObjectEntity(name=g["object"]),
                object_name=g["object_name"], db_name=g["db"],
                grantor=milvus_pb2.GrantorEntity(
                    user=milvus_pb2.UserEntity(name=g["grantor"]),
                    privilege=milvus_pb2.PrivilegeEntity(name=g["privilege"]))))
        return milvus_pb2.SelectGrantResponse(status=OK, entities=out)


    # -- privilege groups (Milvus 2.5: create_privilege_group ...) -----------------------------

    @guard
    def CreatePrivilegeGroup(self, request: Any, context: Any) -> Any:
        self._require("CreatePrivilegeGroup")
        self._auth.create_group(request.group_name)
        return OK

    @guard
    def DropPrivilegeGroup(self, request: Any, context: Any) -> Any:
        self._require("DropPrivilegeGroup")
        self._auth.drop_group(request.group_name)
        return OK

    @guard
    def ListPrivilegeGroups(self, request: Any, context: Any) -> Any:
        self._require("ListPrivilegeGroups")
        groups = [milvus_pb2.PrivilegeGroupInfo(
            group_name=name, privileges=[milvus_pb2.PrivilegeEntity(name=p) for p in privs])
            for name, privs in self._auth.list_groups()]
        return milvus_pb2.ListPrivilegeGroupsResponse(status=OK, privilege_groups=groups)

    @guard
    def OperatePrivilegeGroup(self, request: Any, context: Any) -> Any:
        self._require("OperatePrivilegeGroup")
        names = [p.name for p in request.privileges]
        unknown = [n for n in names if n not in KNOWN_PRIVILEGES]
        if unknown:
            raise InvalidArgument(f"invalid privilege name {unknown[0]!r}: a privilege group "
                                  "holds Milvus privileges such as Insert, Search or Query")
        if not names:
            raise InvalidArgument("privileges must not be empty")
        self._auth.change_group(request.group_name, names,
                                add=request.type == milvus_pb2.AddPrivilegesToGroup)
        return OK


# Privileges granted on "*" by grant_privilege_v2 that are still about collections.
_COLLECTION_LEVEL = frozenset({
    "Insert", "Delete", "Upsert", "Search", "Query", "Load", "Release", "CreateIndex",
    "DropIndex", "IndexDetail", "Flush", "GetFlushState", "GetStatistics", "Compaction",
    "CreatePartition", "DropPartition", "ShowPartitions", "HasPartition", "GetLoadState",
    "GetLoadingProgress", "CollectionReadOnly", "CollectionReadWrite", "CollectionAdmin"})
