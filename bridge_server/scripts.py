"""The Lua scripts of `lua/` (shipped as `bridge_server.lua`), registered once per Redis client.

Each script is called through its contract (`bridge_server.contracts`): KEYS picked from a
`SessionKeys` (or `ImportKeys`) in the declared order, ARGV from the contract's NamedTuple, and the
reply's first element turned into the declared status enum (an undeclared one raises).

Every script is loaded with `PRELUDE` in front of it: the event layout of `bridge_server.events`,
the event kinds (defined from `EventKind`, so no script spells a kind as a number), and what every
mutation does at its end: bump the revision, build the event, append it to the capped log, SPUBLISH
it, refresh the TTL of the session's keys. The prelude only defines locals: no Redis call of its own.

A script runs by EVALSHA and is loaded again on NOSCRIPT (`Script`), so a Redis that restarted or
was flushed needs nothing more.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Callable, Sequence
from importlib import resources
from operator import attrgetter
from typing import Any, Generic

from redis.exceptions import NoScriptError, ResponseError

from bridge_server import contracts as c
from bridge_server.events import EVENT_MAGIC, VALUE_DELETED, VALUE_OMITTED, EventKind
from unified_bridge.errors import BridgeError

__all__ = ["PRELUDE", "Reply", "Script", "Scripts", "load_scripts", "preload_scripts", "script_source"]

_FUNCTIONS = """
-- One change of an event: `value` is the value's bytes, or VALUE_DELETED / VALUE_OMITTED. Built with
-- one `..` chain, which Lua joins in one step: half the time of table.concat over a new table, and
-- a batch builds one change and one record per item.
local function ub_change(version, id, name, var_type, value)
  if type(value) == 'string' then
    return version .. ' ' .. id .. ' ' .. name .. ' ' .. var_type .. ' ' .. #value .. '\\n' .. value
  end
  return version .. ' ' .. id .. ' ' .. name .. ' ' .. var_type .. ' ' .. value .. '\\n'
end
-- A whole event: header, then `body` (the concatenated changes, `count` of them).
local function ub_event(kind, rev, now, count, body)
  return table.concat({EVENT_MAGIC, ' ', rev, ' ', kind, ' ', now, ' ', count, '\\n', body})
end
-- Append to the change log (stream id = revision) and publish live (`published`, when the channel
-- gets other bytes than the log). The log keeps at most `max_len` events and LOG_MAX_BYTES bytes of
-- them (the session hash's `log_bytes` counts them): past either, the oldest go (never the one just
-- added).
local function ub_emit(event, rev, max_len, published)
  local id = rev .. '-0'
  redis.call('XADD', KEYS[4], id, 'e', event)
  redis.call('SPUBLISH', KEYS[5], published or event)
  local bytes = redis.call('HINCRBY', KEYS[1], 'log_bytes', #event)
  local length = redis.call('XLEN', KEYS[4])
  max_len = tonumber(max_len)
  if length > max_len or bytes > LOG_MAX_BYTES then
    -- Drop the oldest one by one (XTRIM, which frees them, unlike XDEL's tombstones that later
    -- reads would wade through), counting what they held.
    while length > 1 and (length > max_len or bytes > LOG_MAX_BYTES) do
      local oldest = redis.call('XRANGE', KEYS[4], '-', '+', 'COUNT', 1)[1]
      bytes, length = bytes - #oldest[2][2], length - 1
      redis.call('XTRIM', KEYS[4], 'MAXLEN', length)
    end
    redis.call('HSET', KEYS[1], 'log_bytes', bytes)
  end
end
-- Refresh the TTL of the session's stored keys (KEYS[1..4]); without `ttl`, the session's own.
local function ub_refresh(ttl)
  ttl = ttl or tonumber(redis.call('HGET', KEYS[1], 'ttl'))
  for i = 1, 4 do redis.call('EXPIRE', KEYS[i], ttl) end
  return ttl
end
-- Mark the session active now and refresh its TTL.
local function ub_touch(now, ttl)
  redis.call('HSET', KEYS[1], 'last_active', now)
  return ub_refresh(ttl)
end
-- The end of a mutation: next revision, the event to the log and the channel, last_active and TTLs.
-- `ttl`: the session's TTL when the caller read it already, false when no refresh is due (the
-- frontend decides, as for reads), nil to read it here and refresh. `writer`: the writing context's
-- token ('' or nil: none), which the channel's copy of the event carries.
local function ub_commit(kind, now, count, body, max_len, ttl, writer)
  local rev = redis.call('HINCRBY', KEYS[1], 'revision', 1)
  local event = ub_event(kind, rev, now, count, body)
  -- The token follows the last change: a reader that knows no tokens stops before it.
  local published = nil
  if writer and writer ~= '' then published = event .. writer end
  ub_emit(event, rev, max_len, published)
  if ttl ~= false then ub_touch(now, ttl) end
  return rev
end
-- redis.call(command, key, args...) over the list `args`, a thousand values per call (an even
-- number, so field-value pairs stay together): Lua's unpack takes a few thousand values at most,
-- and a batch may hold more. Table replies are joined in order (an HMGET's missing fields stay false).
local function ub_chunked(command, key, args)
  local joined = {}
  for first = 1, #args, 1000 do
    local reply = redis.call(command, key, unpack(args, first, math.min(first + 999, #args)))
    if type(reply) == 'table' then
      local n = #joined
      for j = 1, #reply do joined[n + j] = reply[j] end
    end
  end
  return joined
end
-- One variable's record: the one field of the vars hash, named by the variable's id (see
-- bridge_server/records.py, which reads it): "<version> <updated_at> <type> <definition length>\\n",
-- then the definition blob, then the value blob. The name is the id's middle: var_<name>_<8 hex>.
local function ub_record(version, updated, var_type, definition, value)
  return version .. ' ' .. updated .. ' ' .. var_type .. ' ' .. #definition .. '\\n' .. definition .. value
end
-- A record's version, type and definition blob (not its value: no caller needs it).
local function ub_parse(record)
  local version, var_type, length, start = string.match(record, '^(%d+) %-?%d+ (%S+) (%d+)\\n()')
  return version, var_type, string.sub(record, start, start + tonumber(length) - 1)
end
-- Ids are var_<name>_<8 hex digits>: the name of an id, and the names hash maps a name to the id's
-- last 8 digits alone (a 16-byte allocation where the whole id takes 32).
local function ub_name_of(id)
  return string.sub(id, 5, -10)
end
local function ub_suffix_of(id)
  return string.sub(id, -8)
end
-- The id a ref stands for: the id of the variable so named (`suffix`, from the names hash), else
-- the ref itself (taken as an id).
local function ub_id_of(ref, suffix)
  if suffix then return 'var_' .. ref .. '_' .. suffix end
  return ref
end
-- The session's info: {created_at, last_active, ttl, metadata, revision, variable_count}.
local function ub_session_info()
  local s = redis.call('HMGET', KEYS[1], 'created_at', 'last_active', 'ttl', 'metadata', 'revision')
  return {s[1], s[2], s[3], s[4], s[5], redis.call('HLEN', KEYS[3])}
end
"""


#: The default of --change-log-bytes: what one session's change log may hold.
DEFAULT_LOG_MAX_BYTES = 64 * 1024 * 1024


def _prelude(log_max_bytes: int = DEFAULT_LOG_MAX_BYTES) -> str:
    lines = ["-- Prelude (bridge_server/scripts.py): constants from Python, the end of every mutation."]
    lines.append(f"local LOG_MAX_BYTES = {int(log_max_bytes)}")
    lines += [f"local EVENT_{kind.name} = {int(kind)}" for kind in EventKind]
    lines.append(f"local EVENT_MAGIC = '{EVENT_MAGIC.decode()}'")
    lines.append(f"local VALUE_DELETED, VALUE_OMITTED = {VALUE_DELETED}, {VALUE_OMITTED}")
    return "\n".join(lines) + _FUNCTIONS


PRELUDE = _prelude()


@dataclasses.dataclass(frozen=True, slots=True)
class Reply(Generic[c.S]):
    """A script's reply: its declared status and what followed it."""

    script: str
    status: c.S
    values: list[Any]

    def error(self, context: c.Context) -> BridgeError | None:
        return c.error_for(self.status, context)

    def result(self, context: c.Context) -> list[Any]:
        """The values after the status, or the error the status means, raised."""
        error = c.error_for(self.status, context)
        if error is not None:
            raise error
        return self.values


class Script(Generic[c.A, c.S]):
    """One script, called through its contract: EVALSHA, and on NOSCRIPT (a Redis that restarted or
    was flushed) SCRIPT LOAD and EVALSHA again.

    This is what redis-py's `AsyncScript.__call__` does, without what it does on every call for
    pipelines (two imports and two isinstance checks, one of them against a Protocol): measured
    ~3 us of frontend CPU per script call under py-spy, in the frontend and the floor server alike.
    """

    __slots__ = ("_client", "_key_count", "_keys", "contract", "script", "sha")

    def __init__(self, contract: c.Contract[c.A, c.S], client: Any, source: str) -> None:
        self.contract = contract
        self.script = source
        self.sha = hashlib.sha1(source.encode()).hexdigest()  # what SCRIPT LOAD answers
        self._client = client
        self._key_count = len(contract.keys)
        if self._key_count < 2:  # attrgetter of one name gives the name, not a tuple of it
            raise ValueError(f"script {contract.name} names {self._key_count} key: at least 2 expected")
        self._keys: Callable[[Any], tuple[Any, ...]] = attrgetter(*contract.keys)

    async def __call__(self, keys: Any, args: c.A, rest: Sequence[Any] = ()) -> Reply[c.S]:
        """Run with KEYS taken from `keys` (a SessionKeys or ImportKeys) and ARGV = args + rest."""
        command = (self.sha, self._key_count, *self._keys(keys), *args, *rest)
        try:
            reply = await self._client.evalsha(*command)
        except NoScriptError:
            self.sha = await self._client.script_load(self.script)
            reply = await self._client.evalsha(self.sha, *command[1:])
        contract = self.contract
        return Reply(contract.name, c.status_of(contract.statuses, contract.name, reply[0]), reply[1:])


@dataclasses.dataclass(frozen=True, slots=True)
class Scripts:
    create_session: Script[c.CreateSessionArgs, c.CreateSessionStatus]
    touch_session: Script[c.NowArgs, c.TouchSessionStatus]
    delete_session: Script[c.NowArgs, c.DeleteSessionStatus]
    register_variable: Script[c.RegisterVariableArgs, c.RegisterVariableStatus]
    get_variables: Script[c.ReadArgs, c.GetVariablesStatus]
    list_variables: Script[c.ReadArgs, c.ListVariablesStatus]
    set_variables: Script[c.SetVariablesArgs, c.SetVariablesStatus]
    delete_variable: Script[c.DeleteVariableArgs, c.DeleteVariableStatus]
    watch_position: Script[c.ReadArgs, c.WatchPositionStatus]
    import_stage: Script[c.ImportStageArgs, c.ImportStageStatus]
    import_session: Script[c.ImportSessionArgs, c.ImportSessionStatus]

    def all(self) -> tuple[Script[Any, Any], ...]:
        return tuple(getattr(self, field.name) for field in dataclasses.fields(self))


#: Scripts that run even when Redis is full (maxmemory reached, noeviction): deletes free memory, so
#: an operator can always make room through the API. Redis 7 reads the flag from a shebang line,
#: which Redis-compatible stores without script flags (fakeredis) cannot parse: see `flags_supported`.
ALLOW_OOM = frozenset({"delete_session", "delete_variable"})
_ALLOW_OOM_SHEBANG = "#!lua flags=allow-oom\n"


def script_source(name: str, *, flags: bool = True, log_max_bytes: int = DEFAULT_LOG_MAX_BYTES) -> str:
    """The script as Redis runs it: its flags (if any and ``flags``), the prelude, then the file."""
    prelude = PRELUDE if log_max_bytes == DEFAULT_LOG_MAX_BYTES else _prelude(log_max_bytes)
    body = prelude + (resources.files("bridge_server.lua") / f"{name}.lua").read_text(encoding="utf-8")
    return _ALLOW_OOM_SHEBANG + body if flags and name in ALLOW_OOM else body


def load_scripts(redis: Any, *, flags: bool = True, log_max_bytes: int = DEFAULT_LOG_MAX_BYTES) -> Scripts:
    """Every script, called on a `redis.asyncio` client (no round trip until first use)."""
    return Scripts(
        **{
            contract.name: Script(
                contract, redis, script_source(contract.name, flags=flags, log_max_bytes=log_max_bytes)
            )
            for contract in c.CONTRACTS
        }
    )


async def flags_supported(redis: Any) -> bool:
    """Whether the store accepts script flags (Redis 7 does; fakeredis does not)."""
    try:  # EVAL, not SCRIPT LOAD: fakeredis only parses a script when it runs it
        await redis.eval(_ALLOW_OOM_SHEBANG + "return 1", 0)
    except ResponseError:
        return False
    return True


async def preload_scripts(redis: Any, scripts: Scripts) -> None:
    """SCRIPT LOAD every script now, so first calls need no NOSCRIPT round trip.

    On a cluster redis-py sends SCRIPT LOAD to every primary. A script Redis cannot compile fails
    here, at start-up, instead of on a user's first call.
    """
    for script in scripts.all():
        await redis.script_load(script.script)
