# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The store interface every kind implements, and the rotation state machine they share.

The rotation is a state machine whose phase lives in the store's metadata::

    (none|finished|rolled_back) --write_pending--> pending --set_phase--> deployed --> verified
    pending|deployed|verified  --promote--> verified   (every consumer verified the new value:
                                                         AWS moves AWSPENDING to AWSCURRENT)
    verified                   --clear_previous--> finished   (promotes first if needed)
    pending|deployed|verified  --rollback--> rolled_back

``read()`` returns a dict with these keys (values None when absent):

    exists                   whether the secret exists at all
    current, current_id      the value the store serves now and the issuer's id for it
                             (KV v2: data.<field> / data.key_id; AWS: the AWSCURRENT version)
    pending, pending_id      the value written by the rotation in flight, not yet final
                             (KV v2: equal to current while a rotation is in flight, since the
                             new value is written straight into <field>; AWS: AWSPENDING)
    previous, previous_id    the value before it, kept only while a rotation is in flight
                             (KV v2: data.previous_<field> / previous_key_id; AWS: AWSPREVIOUS)
    phase                    rotation_phase: pending, deployed, verified, finished, rolled_back
    inflight                 where the value being rotated in sits: "pending", "current" or
                             None (no rotation in flight, or its value is gone)
    metadata                 the non-secret metadata items (dict of str): consumers,
                             last_rotated, and whatever else the playbooks recorded
    data                     the non-secret rotation data fields (dict of str): rotated_at,
                             rotated_by, rotation_verified_at, rolled_back_at, ...
    new, new_id              the same for every store: the value being rotated in while a
                             rotation is in flight, else the current one -- what consumers
                             must run (``pending`` when set, else ``current``)
    old, old_id              the same for every store: the value being rotated out while a
                             rotation is in flight (KV v2: previous; AWS: AWSCURRENT before
                             promotion, AWSPREVIOUS after), else None
    last_rotated             ISO-8601 UTC: metadata last_rotated, else the store's own date
                             (KV v2: data rotated_at, else created_time; AWS: LastRotatedDate,
                             else the AWSCURRENT version's creation date)
    created_time             ISO-8601 UTC: when the current version was created (KV v2: the
                             latest KV version, i.e. the last write; AWS: AWSCURRENT)
    version                  the store's version id of the current value

After a rollback, ``current`` (and ``new``) is the value put back.

Keys starting with ``_`` are private to the store implementation (raw store data that may
hold secrets); callers must drop them before returning anything to a user.

Each transition method takes ``check_mode`` and returns ``(changed, state)``: the state after
the change (predicted in check mode). ``state`` may be passed in to reuse a fresh read().
The transition rules are pure functions (``plan``) so they are shared by every kind and
unit-tested without a server; a kind only reads its store into the dict above (``_load``)
and writes a planned state back (``_apply``).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import copy

from ansible_collections.credops.rotation.plugins.module_utils._clients._common import verify_setting
from ansible_collections.credops.rotation.plugins.module_utils._errors import RotationError
from ansible_collections.credops.rotation.plugins.module_utils._time import now_iso

PHASES = ("pending", "deployed", "verified", "finished", "rolled_back")
IN_FLIGHT = ("pending", "deployed", "verified")
# the order the in-flight phases must follow (a phase never moves backwards)
PHASE_ORDER = {"pending": 0, "deployed": 1, "verified": 2}

# non-secret data fields the collection itself keeps next to the value
DATA_FIELDS = ("rotated_at", "rotated_by", "rotation_verified_at", "rolled_back_at")
# metadata keys a caller may not set directly (they follow from the transitions)
RESERVED_METADATA = ("rotation_phase",)

ACTIONS = ("pending", "phase", "promote", "finished", "rollback")

# the keys of read() that describe the rotation (compared to decide "changed")
STATE_KEYS = ("current", "current_id", "pending", "pending_id", "previous", "previous_id",
              "phase", "inflight", "metadata", "data")


def empty_state():
    return dict(exists=False, current=None, current_id=None, pending=None, pending_id=None,
                previous=None, previous_id=None, phase=None, inflight=None, metadata={},
                data={}, last_rotated=None, created_time=None, version=None,
                new=None, new_id=None, old=None, old_id=None)


def with_new_and_old(state):
    """Add the store-independent view: ``new`` (what consumers must run) and ``old`` (the
    value being rotated out, while a rotation is in flight)."""
    if state.get("pending") is not None:
        state["new"], state["new_id"] = state["pending"], state.get("pending_id")
    else:
        state["new"], state["new_id"] = state.get("current"), state.get("current_id")
    state["old"] = state["old_id"] = None
    if state.get("phase") in IN_FLIGHT:
        if state.get("previous") is not None:
            state["old"], state["old_id"] = state["previous"], state.get("previous_id")
        elif state.get("pending") is not None and not _same(
                state.get("current"), state.get("current_id"), state["pending"], state.get("pending_id")):
            state["old"], state["old_id"] = state.get("current"), state.get("current_id")
    return state


def fit_utf8(text, limit):
    """``text`` cut to at most ``limit`` UTF-8 bytes, on a character boundary."""
    raw = text.encode("utf-8")
    if len(raw) <= limit:
        return text
    return raw[:limit].decode("utf-8", "ignore")


def public_state(state):
    """read() without the private keys (still holds secret values)."""
    return dict((k, v) for k, v in state.items() if not k.startswith("_"))


def normalize_items(items, what="metadata"):
    """Metadata / data items as a dict of str: lists become comma-separated, None drops.

    Raises ValueError naming the item when a value is not a plain scalar.
    """
    out = {}
    for key, value in (items or {}).items():
        key = str(key)
        if not key:
            raise ValueError("%s keys must not be empty" % what)
        if value is None:
            continue
        if isinstance(value, bool):
            value = "true" if value else "false"
        elif isinstance(value, (list, tuple)):
            if not all(isinstance(v, (str, int, float)) and not isinstance(v, bool) for v in value):
                raise ValueError("%s item '%s' must be a string or a list of strings" % (what, key))
            value = ",".join(str(v) for v in value)
        elif isinstance(value, (int, float)):
            value = str(value)
        elif not isinstance(value, str):
            raise ValueError("%s item '%s' must be a string or a list of strings" % (what, key))
        out[key] = value
    return out


def _refuse(message, fix=None):
    raise RotationError(message, fix=fix)


def _same(value_a, id_a, value_b, id_b):
    return value_a == value_b and id_a == id_b


def inflight_value(state):
    """(value, key_id) of the rotation in flight, or (None, None)."""
    slot = state.get("inflight")
    if state.get("phase") in IN_FLIGHT and slot in ("pending", "current"):
        return state.get(slot), state.get(slot + "_id")
    return None, None


def _merge(after, metadata, data):
    meta = normalize_items(metadata, "metadata")
    for key in RESERVED_METADATA:
        if key in meta:
            _refuse("metadata item '%s' is set by the rotation itself" % key,
                    fix="drop '%s' from metadata; use state=phase / finished / rollback." % key)
    after["metadata"].update(meta)
    after["data"].update(normalize_items(data, "data"))


def _promote(after, pending_is_current):
    """AWSPENDING -> AWSCURRENT in the abstract state (no-op where pending is current)."""
    if pending_is_current or after.get("inflight") != "pending":
        return
    if not _same(after["current"], after["current_id"], after["pending"], after["pending_id"]):
        after["previous"], after["previous_id"] = after["current"], after["current_id"]
    after["current"], after["current_id"] = after["pending"], after["pending_id"]
    after["pending"] = after["pending_id"] = None
    after["inflight"] = "current"


def plan(state, action, pending_is_current, value=None, key_id=None, phase=None,
         metadata=None, data=None, now=None):
    """The state after ``action``; pure. Raises RotationError (no credential yet) if refused.

    ``pending_is_current``: the store writes the new value straight into the current slot
    (KV v2); otherwise the new value waits beside the current one until promoted (AWS).
    Every action ends the same way: the caller's ``metadata`` and ``data`` merged in.
    """
    after = _after_action(state, action, pending_is_current, value, key_id, phase, now or now_iso())
    _merge(after, metadata, data)
    return after


def _require_live_value(live_value):
    if live_value is None:
        _refuse("the value of the rotation in flight is no longer in the store",
                fix="roll the rotation back (state=rollback) and start again.")


def _after_action(before, action, pending_is_current, value, key_id, phase, now):
    """plan() up to the merge of metadata and data."""
    after = copy.deepcopy(public_state(before))
    after["metadata"] = dict(after.get("metadata") or {})
    after["data"] = dict(after.get("data") or {})
    cur_phase = before.get("phase")
    in_flight = cur_phase in IN_FLIGHT
    live_value, live_id = inflight_value(before)

    if action == "pending":
        if value is None or value == "":
            _refuse("no value to write", fix="pass the new value (value=...).")
        if in_flight:
            if live_value is not None and live_value == value and key_id in (None, live_id):
                return after   # an interrupted run coming back: same value
            _refuse("a rotation is already in flight (phase %s, key id %s); refusing to write a "
                    "second pending value" % (cur_phase, live_id or "unknown"),
                    fix="finish that rotation (deploy, verify, state=finished) or roll it back "
                        "(state=rollback) before issuing another value.")
        if pending_is_current:
            after["previous"], after["previous_id"] = before.get("current"), before.get("current_id")
            after["current"], after["current_id"] = value, key_id
            after["pending"], after["pending_id"] = value, key_id
            after["inflight"] = "current"
        else:
            after["previous"] = after["previous_id"] = None
            after["pending"], after["pending_id"] = value, key_id
            after["inflight"] = "pending"
            if before.get("current") is None:
                # the first version of a secret is always current (AWS attaches AWSCURRENT)
                after["current"], after["current_id"] = value, key_id
        after["phase"] = "pending"
        for field in DATA_FIELDS:
            after["data"].pop(field, None)
        after["data"]["rotated_at"] = now
        after["exists"] = True
        return after

    if action == "phase":
        if phase not in PHASE_ORDER or phase == "pending":
            _refuse("unknown phase '%s' for state=phase" % phase,
                    fix="use phase=deployed or phase=verified.")
        if not in_flight:
            _refuse("no rotation in flight (phase %s); cannot record phase %s" % (cur_phase, phase),
                    fix="write the new value first (state=pending).")
        _require_live_value(live_value)
        if PHASE_ORDER[phase] < PHASE_ORDER[cur_phase]:
            _refuse("the rotation is already %s; a phase never moves back to %s" % (cur_phase, phase),
                    fix="carry on from %s (or roll back with state=rollback)." % cur_phase)
        after["phase"] = phase
        if phase == "verified" and cur_phase != "verified":
            after["data"]["rotation_verified_at"] = now
        return after

    if action == "promote":
        if cur_phase == "finished" and before.get("pending") is None:
            return after
        if not in_flight:
            _refuse("nothing to promote: no rotation in flight (phase %s)" % cur_phase,
                    fix="write a new value first (state=pending).")
        _require_live_value(live_value)
        _promote(after, pending_is_current)
        if cur_phase != "verified":
            # promotion happens once every consumer verified the new value (the contract)
            after["phase"] = "verified"
            after["data"].setdefault("rotation_verified_at", now)
        return after

    if action == "finished":
        if cur_phase == "finished":
            return after
        if cur_phase != "verified":
            _refuse("cannot finish a rotation in phase %s: the previous value is only forgotten "
                    "once every consumer verified the new one" % cur_phase,
                    fix="verify every consumer and record it (state=phase, phase=verified, "
                        "or state=promote) first"
                        if in_flight else "start a rotation first (state=pending).")
        _require_live_value(live_value)
        _promote(after, pending_is_current)
        after["previous"] = after["previous_id"] = None
        after["pending"] = after["pending_id"] = None
        after["inflight"] = None
        after["phase"] = "finished"
        after["metadata"]["last_rotated"] = now
        return after

    if action == "rollback":
        if cur_phase == "rolled_back":
            return after
        if not in_flight:
            _refuse("nothing to roll back: no rotation in flight (phase %s)%s"
                    % (cur_phase, "; the previous value was already revoked"
                       if cur_phase == "finished" else ""),
                    fix="start a new rotation instead.")
        slot = before.get("inflight") if live_value is not None else None
        if slot == "pending" and not pending_is_current:
            if before.get("current") is None or _same(before.get("current"), before.get("current_id"),
                                                      before.get("pending"), before.get("pending_id")):
                _refuse("nothing to put back: the store held no value before this rotation",
                        fix="fix the consumers by hand, or delete the secret and start again.")
            after["pending"] = after["pending_id"] = None
        elif slot == "current":
            if before.get("previous") is None:
                _refuse("nothing to put back: the store held no value before this rotation",
                        fix="fix the consumers by hand, or delete the secret and start again.")
            after["current"], after["current_id"] = before["previous"], before.get("previous_id")
            after["pending"] = after["pending_id"] = None
        # slot None: the value was already taken out (an interrupted rollback): finish the record
        after["previous"] = after["previous_id"] = None
        after["inflight"] = None
        after["phase"] = "rolled_back"
        old = {}
        if before.get("metadata", {}).get("last_rotated"):
            old["rotated_at"] = before["metadata"]["last_rotated"]
        for field in DATA_FIELDS:
            after["data"].pop(field, None)
        after["data"].update(old)
        after["data"]["rolled_back_at"] = now
        return after

    raise ValueError("unknown action %r" % (action,))


def changed_keys(before, after):
    """The STATE_KEYS whose value differs."""
    return [k for k in STATE_KEYS if before.get(k) != after.get(k)]


class Store(object):
    """One store kind. ``config`` is the credential's ``store`` mapping, ``credential`` its name.

    A kind implements ``_load()`` (read the store into the read() dict, private raw data
    under ``_``-keys), ``_apply(before, after)`` (make the store hold ``after``) and
    ``_in_sync(before, after)`` (True when the store already holds ``after`` exactly).
    """

    kind = None
    #: the new value is written straight into the current slot (KV v2) or beside it (AWS)
    pending_is_current = True

    # --- what the kind declares (read by preflight and the JSON Schema through the registry;
    # class-level, so nothing is constructed and no library is imported to read them) ---------

    #: the options of STORE_ARGSPEC (the union of the kinds) this kind uses, besides ``kind``
    FIELDS = ()
    #: the fields it requires besides ``kind`` (STORE_REQUIRED_IF, preflight, the JSON Schema)
    REQUIRED = ()
    #: defaults the contract fills in (``normalize``), by field
    DEFAULTS = {}
    #: each version's id derives from the key id, so a key id used again would collide
    VERSION_IDS_FROM_KEY_ID = False
    #: why a Kubernetes ExternalSecret cannot read this store during a rotation, or None
    EXTERNAL_SECRET_PROBLEM = None

    @classmethod
    def preflight(cls, report, path, block, check):
        """The kind's own preflight checks of a store ``block`` (a mapping, kind known); problems
        go to ``report``. ``check`` is the module of shared field checks (``_inventory.checks``)."""

    @classmethod
    def normalize(cls, block):
        """Fill the contract's defaults into a store ``block`` (in place)."""
        for name, value in cls.DEFAULTS.items():
            block.setdefault(name, value)

    def __init__(self, config, credential):
        self.config = dict(config or {})
        self.credential = credential

    # -- to implement -------------------------------------------------------------------
    def _load(self):
        raise NotImplementedError

    def _apply(self, before, after):
        raise NotImplementedError

    def _in_sync(self, before, after):
        raise NotImplementedError

    def describe(self):
        """Where the secret lives, for messages (never a value)."""
        return self.kind

    # -- the interface --------------------------------------------------------------------
    def error(self, message, fix=None):
        return RotationError("%s %s: %s" % (self.kind, self.describe(), message),
                             credential=self.credential, step="store", fix=fix)

    def client_settings(self, library, name):
        """(verify, timeout) for the store's client, from validate_certs (default true), ca_cert
        (the CA bundle to verify with) and timeout; a RotationError when ``library`` (a
        LazyModule) cannot be imported."""
        if library.import_error():
            raise self.error("the Python library %s is missing" % name, fix="pip install %s." % name)
        cfg = self.config
        return verify_setting(cfg.get("validate_certs"), cfg.get("ca_cert")), cfg.get("timeout") or 30

    def read(self):
        return with_new_and_old(self._load())

    def _transition(self, action, check_mode=False, state=None, **kwargs):
        before = state if state is not None else self.read()
        try:
            after = plan(before, action, self.pending_is_current, **kwargs)
        except RotationError as exc:
            raise self.error(exc.message, fix=exc.fix)
        except ValueError as exc:
            raise self.error(str(exc), fix="pass plain strings in metadata and data.")
        for key in ("_raw", "last_rotated", "created_time", "version", "exists"):
            if key in before and key not in after:
                after[key] = before[key]
        if after.get("metadata", {}).get("last_rotated"):
            after["last_rotated"] = after["metadata"]["last_rotated"]
        if self._in_sync(before, after):
            return False, before
        if check_mode:
            return True, with_new_and_old(after)
        self._apply(before, after)
        return True, self.read()

    def write_pending(self, value, key_id=None, metadata=None, data=None, check_mode=False,
                      state=None):
        """Keep the current value as previous and make ``value`` the pending one; phase pending.

        Refused while another rotation is in flight, unless ``value`` is that rotation's value
        (an interrupted run coming back), which changes nothing.
        """
        return self._transition("pending", check_mode, state, value=value, key_id=key_id,
                                metadata=metadata, data=data)

    def set_phase(self, phase, metadata=None, data=None, check_mode=False, state=None):
        """Record the phase deployed / verified (and other non-secret metadata / data)."""
        return self._transition("phase", check_mode, state, phase=phase, metadata=metadata,
                                data=data)

    def promote(self, metadata=None, data=None, check_mode=False, state=None):
        """Every consumer verified the new value: make it current (AWS: AWSCURRENT, the old one
        AWSPREVIOUS; KV v2: nothing to move) and record phase verified."""
        return self._transition("promote", check_mode, state, metadata=metadata, data=data)

    def clear_previous(self, metadata=None, data=None, check_mode=False, state=None):
        """Forget the previous value once it is revoked; phase finished, last_rotated now."""
        return self._transition("finished", check_mode, state, metadata=metadata, data=data)

    def rollback(self, metadata=None, data=None, check_mode=False, state=None):
        """Put the previous value back as current, drop the new one; phase rolled_back."""
        return self._transition("rollback", check_mode, state, metadata=metadata, data=data)


def public_view(state):
    """The non-secret facts of a read() state: phase, key ids, versions, metadata, data."""
    return dict(
        exists=bool(state.get("exists")),
        phase=state.get("phase"),
        in_flight=state.get("phase") in IN_FLIGHT,
        key_id=state.get("current_id"),
        pending_key_id=state.get("pending_id"),
        previous_key_id=state.get("previous_id"),
        new_key_id=state.get("new_id"),
        old_key_id=state.get("old_id"),
        version=state.get("version"),
        last_rotated=state.get("last_rotated"),
        created_time=state.get("created_time"),
        metadata=dict(state.get("metadata") or {}),
        data=dict(state.get("data") or {}),
    )
