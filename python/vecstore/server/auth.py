"""Users, roles and privileges of ``vecstore serve``, kept in ``auth.json`` in the data directory.

Credentials follow Milvus's scheme: a client sends the ``authorization`` metadata header,
base64 of ``user:password`` (pymilvus's ``token="user:password"`` or ``user=``/``password=``).
Passwords are stored only as scrypt hashes (n=2**14, r=8, p=1, 16-byte random salt per user);
verifying one costs tens of milliseconds, so a header that verified once is remembered (as its
SHA-256, in memory) until any credential changes.

The superuser is ``root``, whose password is never built in: it is set on the first start with
authentication on (``--root-password-file`` or ``VECSTORE_ROOT_PASSWORD``) and changed later only
through ``update_password``. Built-in roles: ``admin`` (may do everything, like root) and
``public`` (every user has it; it starts with Milvus's defaults, DescribeCollection and
IndexDetail on every collection and ShowCollections, which root may revoke).

A grant is (role, object type, object name, database, privilege). A request needing privilege P
on collection C in database D is allowed when one of the caller's roles holds P (or ``All``/``*``,
or a built-in privilege group containing P) on C or ``*``, in D or ``*``. Requests that name no
collection are checked against the object name ``*``.

File format (JSON, version 1)::

    {"version": 1,
     "users": {"root": {"salt": hex, "hash": hex, "n": 16384, "r": 8, "p": 1,
                        "description": "", "roles": []}},
     "roles": {"admin": {"description": "", "grants": []},
               "public": {"description": "", "grants": [{"object": "Collection",
                          "object_name": "*", "db": "*", "privilege": "DescribeCollection",
                          "grantor": "root"}]}}}

Writes replace the file atomically (temporary file, fsync, ``os.replace``, fsync of the
directory) under a lock; the data directory's ``LOCK`` keeps other processes out.

Thread safety: every method may be called from any gRPC worker thread.
"""

from __future__ import annotations

import base64
import binascii
import copy
import hashlib
import hmac
import json
import os
import re
import secrets
import threading
from typing import Any

from vecstore.errors import InvalidArgument, VecstoreError

AUTH_FILE = "auth.json"
ROOT = "root"
ADMIN = "admin"
PUBLIC = "public"
BUILTIN_ROLES = (ADMIN, PUBLIC)
ROOT_PASSWORD_ENV = "VECSTORE_ROOT_PASSWORD"

_SCRYPT = {"n": 2**14, "r": 8, "p": 1}
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_\-]{0,31}$")
MIN_PASSWORD, MAX_PASSWORD = 6, 256  # Milvus's minPasswordLength / maxPasswordLength

# Milvus's built-in privilege groups (pkg/util/constant.go), usable with grant_privilege_v2.
_READ_ONLY = ("Query", "Search", "IndexDetail", "GetFlushState", "GetLoadState",
              "GetLoadingProgress", "HasPartition", "ShowPartitions", "DescribeCollection",
              "DescribeAlias", "GetStatistics", "ListAliases")
_READ_WRITE = _READ_ONLY + ("Load", "Release", "Insert", "Delete", "Upsert", "Import", "Flush",
                            "Compaction", "LoadBalance", "CreateIndex", "DropIndex",
                            "CreatePartition", "DropPartition")
GROUPS = {
    "CollectionReadOnly": frozenset(_READ_ONLY),
    "CollectionReadWrite": frozenset(_READ_WRITE),
    "CollectionAdmin": frozenset(_READ_WRITE + ("CreateAlias", "DropAlias")),
}
_PUBLIC_DEFAULTS = (("Collection", "DescribeCollection"), ("Collection", "IndexDetail"),
                    ("Global", "ShowCollections"))


class AuthError(VecstoreError):
    """Missing or wrong credentials (Milvus's ``ErrPrivilegeNotAuthenticated``)."""

    code = 1400


class PermissionDenied(VecstoreError):
    """The caller lacks the privilege (Milvus's ``ErrPrivilegeNotPermitted``)."""

    code = 1401


class RootPasswordMissing(VecstoreError):
    """Authentication is on and no root password was ever configured."""

    code = 1400


def _hash(password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(password.encode(), salt=salt, n=n, r=r, p=p, maxmem=64 * 1024 * 1024,
                          dklen=32)


def check_password(password: str) -> None:
    if not isinstance(password, str) or not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise InvalidArgument(f"invalid password: the length must be between {MIN_PASSWORD} and "
                              f"{MAX_PASSWORD} characters")


def check_name(kind: str, name: str) -> str:
    if not isinstance(name, str) or not _NAME.match(name):
        raise InvalidArgument(f"invalid {kind} name {name!r}: use up to 32 letters, digits, '_' "
                              "or '-', starting with a letter or '_'")
    return name


def parse_authorization(value: str | bytes | None) -> tuple[str, str] | None:
    """(user, password) from the ``authorization`` header (base64 of ``user:password``)."""
    if not value:
        return None
    if isinstance(value, bytes):
        value = value.decode("latin-1")
    value = value.strip()
    if value.lower().startswith("basic "):  # HTTP basic auth carries the same encoding
        value = value[6:].strip()
    try:
        text = base64.b64decode(value, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    user, sep, password = text.partition(":")
    if not sep:
        return None
    return user, password


class CredentialStore:
    def __init__(self, data_dir: str) -> None:
        self.path = os.path.join(os.fspath(data_dir), AUTH_FILE)
        self._mu = threading.Lock()
        self._verified: dict[bytes, str] = {}  # sha256(header) -> user; cleared on any change
        if os.path.exists(self.path):
            with open(self.path, encoding="utf-8") as f:
                self._state = json.load(f)
        else:
            self._state = {"version": 1, "users": {}, "roles": {}}
        roles = self._state["roles"]
        if PUBLIC not in roles:
            roles[PUBLIC] = {"description": "", "grants": [
                {"object": obj, "object_name": "*", "db": "*", "privilege": priv,
                 "grantor": ROOT} for obj, priv in _PUBLIC_DEFAULTS]}
        roles.setdefault(ADMIN, {"description": "", "grants": []})

    # -- persistence ----------------------------------------------------------------------------

    def _save(self) -> None:
        """Caller holds _mu. Atomic replace: a crash leaves the old or the new file."""
        self._verified.clear()
        tmp = self.path + ".tmp"
        data = json.dumps(self._state, indent=1, sort_keys=True).encode()
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, self.path)
        dfd = os.open(os.path.dirname(self.path), os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)

    def has_root(self) -> bool:
        with self._mu:
            return ROOT in self._state["users"]

    def init_root(self, password: str) -> bool:
        """Sets root's password if root has none yet; False (nothing changed) otherwise."""
        check_password(password)
        with self._mu:
            if ROOT in self._state["users"]:
                return False
            self._state["users"][ROOT] = self._new_user(password, "")
            self._save()
            return True

    @staticmethod
    def _new_user(password: str, description: str) -> dict[str, Any]:
        salt = secrets.token_bytes(16)
        return {"salt": salt.hex(), "hash": _hash(password, salt, **_SCRYPT).hex(), **_SCRYPT,
                "description": description, "roles": []}

    # -- authentication -------------------------------------------------------------------------

    def _verify(self, user: str, password: str) -> bool:
        entry = self._state["users"].get(user)
        if entry is None:
            _hash(password, b"\0" * 16, **_SCRYPT)  # same cost whether or not the user exists
            return False
        got = _hash(password, bytes.fromhex(entry["salt"]), entry["n"], entry["r"], entry["p"])
        return hmac.compare_digest(got, bytes.fromhex(entry["hash"]))

    def authenticate(self, header: str | bytes | None) -> str:
        """The user an ``authorization`` header names, or :class:`AuthError`."""
        parsed = parse_authorization(header)
        if parsed is None:
            raise AuthError("auth check failure, please check username and password are correct")
        raw = header.encode("latin-1") if isinstance(header, str) else header
        key = hashlib.sha256(raw).digest()
        with self._mu:
            user = self._verified.get(key)
            if user is not None:
                return user
        user, password = parsed
        # Hash outside the lock: scrypt is slow on purpose. A concurrent change clears the
        # cache; the entry below is only stored if the state object is still the same.
        with self._mu:
            entry = copy.deepcopy(self._state["users"].get(user))
        ok = entry is not None and hmac.compare_digest(
            _hash(password, bytes.fromhex(entry["salt"]), entry["n"], entry["r"], entry["p"]),
            bytes.fromhex(entry["hash"]))
        if entry is None:
            _hash(password, b"\0" * 16, **_SCRYPT)
        if not ok:
            raise AuthError("auth check failure, please check username and password are correct")
        with self._mu:
            if self._state["users"].get(user, {}).get("hash") == entry["hash"]:
                self._verified[key] = user
        return user

    # -- authorization --------------------------------------------------------------------------

    def roles_of(self, user: str) -> list[str]:
        with self._mu:
            entry = self._state["users"].get(user)
            return list(entry["roles"]) if entry else []

    def is_admin(self, user: str) -> bool:
        return user == ROOT or ADMIN in self.roles_of(user)

    def allowed(self, user: str, privilege: str, db: str, object_name: str) -> bool:
        if self.is_admin(user):
            return True
        with self._mu:
            entry = self._state["users"].get(user)
            if entry is None:
                return False
            roles = [*entry["roles"], PUBLIC]
            for role in roles:
                for g in self._state["roles"].get(role, {}).get("grants", ()):
                    if g["db"] not in ("*", db) or g["object_name"] not in ("*", object_name):
                        continue
                    p = g["privilege"]
                    if p in (privilege, "*", "All") or privilege in GROUPS.get(p, ()) or \
                            privilege in self._state.get("groups", {}).get(p, ()):
                        return True
        return False

    # -- users ----------------------------------------------------------------------------------

    def create_user(self, user: str, password: str, description: str = "") -> None:
        check_name("user", user)
        check_password(password)
        with self._mu:
            if user in self._state["users"]:
                raise InvalidArgument(f"user {user} already exists")
            self._state["users"][user] = self._new_user(password, description)
            self._save()

    def update_password(self, user: str, old: str | None, new: str,
                        description: str | None = None) -> None:
        """``old=None`` skips the old-password check (an admin resetting another user)."""
        check_password(new)
        with self._mu:
            entry = self._state["users"].get(user)
            if entry is None:
                raise InvalidArgument(f"user {user} not found")
        if old is not None and not self._verify(user, old):
            raise AuthError(f"old password of user {user} is not correct")
        with self._mu:
            entry = self._state["users"].get(user)
            if entry is None:
                raise InvalidArgument(f"user {user} not found")
            fresh = self._new_user(new, entry["description"] if description is None
                                   else description)
            fresh["roles"] = entry["roles"]
            self._state["users"][user] = fresh
            self._save()

    def update_description(self, user: str, description: str) -> None:
        with self._mu:
            entry = self._state["users"].get(user)
            if entry is None:
                raise InvalidArgument(f"user {user} not found")
            entry["description"] = description
            self._save()

    def drop_user(self, user: str) -> None:
        if user == ROOT:
            raise InvalidArgument("the root user cannot be dropped")
        with self._mu:
            if self._state["users"].pop(user, None) is not None:
                self._save()

    def list_users(self) -> list[str]:
        with self._mu:
            return sorted(self._state["users"])

    def describe_user(self, user: str) -> dict[str, Any] | None:
        with self._mu:
            entry = self._state["users"].get(user)
            if entry is None:
                return None
            return {"user": user, "roles": list(entry["roles"]),
                    "description": entry["description"]}

    # -- roles ----------------------------------------------------------------------------------

    def create_role(self, role: str, description: str = "") -> None:
        check_name("role", role)
        with self._mu:
            if role in self._state["roles"]:
                raise InvalidArgument(f"role {role} already exists")
            self._state["roles"][role] = {"description": description, "grants": []}
            self._save()

    def alter_role(self, role: str, description: str) -> None:
        with self._mu:
            entry = self._require_role(role)
            entry["description"] = description
            self._save()

    def drop_role(self, role: str, force: bool = False) -> None:
        if role in BUILTIN_ROLES:
            raise InvalidArgument(f"the built-in role {role} cannot be dropped")
        with self._mu:
            entry = self._state["roles"].get(role)
            if entry is None:
                return
            if entry["grants"] and not force:
                raise InvalidArgument(f"role {role} still has {len(entry['grants'])} privileges: "
                                      "revoke them first, or drop it with force_drop=True")
            del self._state["roles"][role]
            for u in self._state["users"].values():
                if role in u["roles"]:
                    u["roles"].remove(role)
            self._save()

    def _require_role(self, role: str) -> dict[str, Any]:
        entry = self._state["roles"].get(role)
        if entry is None:
            raise InvalidArgument(f"role {role} not found")
        return entry

    def list_roles(self) -> list[tuple[str, str, list[str]]]:
        """(role, description, users) for every role."""
        with self._mu:
            return [(name, r["description"],
                     sorted(u for u, e in self._state["users"].items() if name in e["roles"]))
                    for name, r in sorted(self._state["roles"].items())]

    def grant_role(self, user: str, role: str) -> None:
        with self._mu:
            entry = self._state["users"].get(user)
            if entry is None:
                raise InvalidArgument(f"user {user} not found")
            self._require_role(role)
            if role not in entry["roles"] and role != PUBLIC:
                entry["roles"].append(role)
                self._save()

    def revoke_role(self, user: str, role: str) -> None:
        with self._mu:
            entry = self._state["users"].get(user)
            if entry is None:
                raise InvalidArgument(f"user {user} not found")
            self._require_role(role)
            if role in entry["roles"]:
                entry["roles"].remove(role)
                self._save()

    # -- privileges -----------------------------------------------------------------------------

    def grant(self, role: str, obj: str, object_name: str, db: str, privilege: str,
              grantor: str) -> None:
        if not privilege:
            raise InvalidArgument("privilege must not be empty")
        if not object_name:
            raise InvalidArgument("object name must not be empty (use '*' for all)")
        grant = {"object": obj or "Collection", "object_name": object_name,
                 "db": db or "default", "privilege": privilege, "grantor": grantor}
        with self._mu:
            grants = self._require_role(role)["grants"]
            if not any(_same(g, grant) for g in grants):
                grants.append(grant)
                self._save()

    def revoke(self, role: str, obj: str, object_name: str, db: str, privilege: str) -> None:
        probe = {"object": obj, "object_name": object_name, "db": db or "default",
                 "privilege": privilege}
        with self._mu:
            entry = self._require_role(role)
            kept = [g for g in entry["grants"] if not _same(g, probe, match_object=bool(obj))]
            if len(kept) != len(entry["grants"]):
                entry["grants"] = kept
                self._save()

    def grants(self, role: str, db: str = "") -> list[dict[str, str]]:
        with self._mu:
            entry = self._require_role(role)
            return [dict(g) for g in entry["grants"] if not db or g["db"] in (db, "*")]

    # -- privilege groups -----------------------------------------------------------------------

    def create_group(self, group: str) -> None:
        """A custom privilege group, empty; grant it like a privilege (grant_privilege_v2)."""
        check_name("privilege group", group)
        with self._mu:
            groups = self._state.setdefault("groups", {})
            if group in GROUPS or group in groups:
                raise InvalidArgument(f"privilege group {group} already exists")
            groups[group] = []
            self._save()

    def drop_group(self, group: str) -> None:
        """Drops a custom group that no role is granted (Milvus refuses to drop one in use)."""
        if group in GROUPS:
            raise InvalidArgument(f"the built-in privilege group {group} cannot be dropped")
        with self._mu:
            groups = self._state.setdefault("groups", {})
            if group not in groups:
                return
            users = sorted(r for r, e in self._state["roles"].items()
                           if any(g["privilege"] == group for g in e["grants"]))
            if users:
                raise InvalidArgument(f"privilege group {group} is granted to role "
                                      f"{users[0]}: revoke it first")
            del groups[group]
            self._save()

    def list_groups(self) -> list[tuple[str, list[str]]]:
        """(group, privileges) of the built-in groups, then the custom ones."""
        with self._mu:
            custom = sorted(self._state.get("groups", {}).items())
        return [(g, sorted(p)) for g, p in GROUPS.items()] + [(g, list(p)) for g, p in custom]

    def change_group(self, group: str, privileges: list[str], add: bool) -> None:
        """Adds ``privileges`` to a custom group, or removes them."""
        if group in GROUPS:
            raise InvalidArgument(f"the built-in privilege group {group} cannot be changed")
        with self._mu:
            members = self._state.setdefault("groups", {}).get(group)
            if members is None:
                raise InvalidArgument(f"privilege group {group} not found; create it with "
                                      "create_privilege_group")
            if add:
                members.extend(p for p in dict.fromkeys(privileges) if p not in members)
            else:
                members[:] = [p for p in members if p not in privileges]
            self._save()

    def is_group(self, name: str) -> bool:
        with self._mu:
            return name in GROUPS or name in self._state.get("groups", {})

    def role_exists(self, role: str) -> bool:
        with self._mu:
            return role in self._state["roles"]


def _same(a: dict[str, str], b: dict[str, str], match_object: bool = True) -> bool:
    keys = ("object_name", "db", "privilege") + (("object",) if match_object else ())
    return all(a[k] == b[k] for k in keys)
