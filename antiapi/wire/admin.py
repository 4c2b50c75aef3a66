"""The admin API contract: every resource and event the server's ``/admin`` API and the TUI share.

Pure: imports only the standard library and msgspec. The server (``antiapi/server/admin.py``)
encodes these Structs; the TUI (``antiapi/tui``) decodes them. Nothing else is shared between
the two, so a field added here is visible on both sides at once.

Conventions:

* Resources are plain Structs without ``forbid_unknown_fields`` (an older TUI must keep working
  against a newer server); request bodies (``*Edit``, ``*Patch``, ``SignInStart``...) forbid
  unknown fields so a typo is a 400 instead of a silent no-op.
* ``*Patch`` bodies use :data:`msgspec.UNSET` for "leave unchanged" (``null`` means "clear").
* Live events travel as Server-Sent Events: the SSE ``event:`` name is the event's ``type`` tag
  and ``data:`` is the JSON of the event Struct. :func:`decode_event` returns ``None`` for a type
  it does not know, so a newer server can add events without breaking an older TUI.
* Pure helpers used on both sides: :func:`validate_chain` (routing edits are checked by the TUI
  before saving and by the server before storing), :func:`request_matches` (request-log filters)
  and :func:`parse_status_filter`.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable
from typing import Literal, Union

import msgspec
from msgspec import UNSET, Struct, UnsetType, field

__all__ = [
    "EVENT_TYPES",
    "STATUS_FILTERS",
    "STRATEGIES",
    "USAGE_GROUPS",
    "AccountInfo",
    "AccountPatch",
    "AccountQuota",
    "AccountsEvent",
    "AdminEvent",
    "ApiKeyAccount",
    "Chain",
    "ChainEdit",
    "ClientKeyInfo",
    "Cooldown",
    "Entry",
    "ErrorBody",
    "ErrorDetail",
    "Flow",
    "KeyCreate",
    "KeyCreated",
    "KeyPatch",
    "KeysEvent",
    "ModelInfo",
    "ProviderType",
    "QuotaEvent",
    "QuotaWindow",
    "RemoteEvent",
    "RemotePatch",
    "RemoteView",
    "RequestEvent",
    "RequestQuery",
    "RequestRecord",
    "RoutingEvent",
    "RoutingPatch",
    "RoutingView",
    "Settings",
    "SettingsEvent",
    "SettingsPatch",
    "SignInComplete",
    "SignInEvent",
    "SignInFlow",
    "SignInStart",
    "Status",
    "StatusEvent",
    "TunnelStart",
    "TunnelStatus",
    "TunnelTool",
    "UsageAggregate",
    "decode_event",
    "encode_event",
    "entry_key",
    "parse_status_filter",
    "request_matches",
    "validate_chain",
]

Strategy = Literal["ordered", "round_robin", "least_used"]
STRATEGIES: tuple[str, ...] = ("ordered", "round_robin", "least_used")
#: what ``GET /admin/usage?by=`` accepts
USAGE_GROUPS: tuple[str, ...] = ("account", "model", "upstream_model", "day", "client_key")
#: the non-numeric values ``GET /admin/requests?status=`` accepts (besides ``429`` or ``5xx``)
STATUS_FILTERS: tuple[str, ...] = ("ok", "error")


# ---------------------------------------------------------------------------------------- status


class Status(Struct, kw_only=True):
    """``GET /admin/status``: the gateway at a glance (the TUI's status line)."""

    version: str
    #: where clients reach the gateway
    url: str
    started_at: float
    uptime_s: float
    #: requests finished in the last 60 s (all statuses) and the failed ones among them
    requests_per_min: float = 0.0
    errors_per_min: float = 0.0
    requests_total: int = 0
    accounts: int = 0
    models: int = 0
    #: the server's clock (epoch seconds) when this was taken
    time: float = 0.0
    #: every gateway request needs a client key now
    keys_required: bool = False
    #: the public tunnel URL while a tunnel runs
    tunnel_url: str | None = None


# ---------------------------------------------------------------------------------------- errors


class ErrorDetail(Struct):
    code: str
    message: str
    #: one line per problem (validation)
    details: list[str] = field(default_factory=list)


class ErrorBody(Struct):
    """Every non-2xx answer of the admin API (401 included)."""

    error: ErrorDetail


# ---------------------------------------------------------------------------------------- accounts


class ProviderType(Struct, kw_only=True):
    """``GET /admin/providers``: a provider family and how an account of it is added."""

    type: str
    #: accounts are added by signing in (``POST /admin/accounts/signin``)
    sign_in: bool = False
    #: accounts are added with an API key (``POST /admin/accounts/apikey``; may answer 501)
    api_key: bool = False
    accounts: int = 0
    note: str | None = None


class AccountInfo(Struct, kw_only=True):
    """``GET /admin/accounts``: one account (a configured provider entry or a signed-in account)."""

    name: str
    type: str
    label: str | None = None
    enabled: bool = True
    #: creation order (Smart Switch and type entries use it)
    order: int = 0
    #: "config" (the config file), "signed_in" (codex/copilot credentials), "admin" (added here)
    source: str = "config"
    #: "ok" | "limited" | "cooling_down" | "needs_sign_in" | "disabled"
    status: str = "ok"
    #: whether ``DELETE /admin/accounts/{name}`` can remove it (config-file entries cannot)
    removable: bool = False
    models: int = 0


class AccountPatch(Struct, forbid_unknown_fields=True):
    """``PATCH /admin/accounts/{name}``."""

    enabled: bool


class ApiKeyAccount(Struct, forbid_unknown_fields=True, kw_only=True):
    """``POST /admin/accounts/apikey``: add an API-key provider (``openai`` — also any
    OpenAI-compatible server with ``base_url`` —, ``anthropic`` or ``gemini``).

    ``models``: the upstream model ids to serve; empty: the gateway asks the upstream for its
    model list (which also checks the key). ``api_key`` may be empty for servers that need none
    (a local Ollama)."""

    type: str
    name: str
    api_key: str = ""
    base_url: str | None = None
    models: list[str] = field(default_factory=list)

    def __repr__(self) -> str:  # never show the key in logs or tracebacks
        return (f"ApiKeyAccount(type={self.type!r}, name={self.name!r}, api_key='***', base_url={self.base_url!r}, "
                f"models={self.models!r})")


class SignInStart(Struct, forbid_unknown_fields=True):
    """``POST /admin/accounts/signin``."""

    provider: str
    #: "device" (a code to type at a URL) or "browser" (open a URL); None: the provider's default
    mode: Literal["device", "browser"] | None = None


class SignInComplete(Struct, forbid_unknown_fields=True):
    """``POST /admin/accounts/signin/{flow_id}/complete``: the redirect URL (or code) the browser
    ended on, for a browser sign-in whose callback cannot reach this machine (SSH)."""

    pasted: str


class SignInFlow(Struct, kw_only=True):
    """A sign-in in progress (``POST`` starts one, ``GET /admin/accounts/signin/{flow_id}`` follows it)."""

    flow_id: str
    provider: str
    #: "pending" | "done" | "failed" | "cancelled"
    status: str = "pending"
    #: browser sign-in: the URL to open
    url: str | None = None
    #: device sign-in: the code to type at ``verification_uri``
    user_code: str | None = None
    verification_uri: str | None = None
    expires_at: float | None = None
    #: the account label once signed in
    label: str | None = None
    #: why it failed
    error: str | None = None
    #: a hint to show the user (e.g. "paste the URL your browser ended on")
    message: str | None = None


# ---------------------------------------------------------------------------------------- routing


class Entry(Struct, forbid_unknown_fields=True, omit_defaults=True):
    """One step of a flow or chain: an account name or provider type, the upstream model, and an
    optional account label narrowing a type to one account."""

    provider: str
    model: str | None = None
    account: str | None = None


class Flow(Struct, kw_only=True):
    """A named route (``route:<name>``) through several accounts and models."""

    name: str
    entries: list[Entry] = field(default_factory=list)
    strategy: Strategy | None = None
    #: "config" (imported from the config file) or "admin"
    source: str = "admin"


class Chain(Struct, kw_only=True):
    """An official model id's account chain (which accounts serve it, in which order)."""

    model: str
    entries: list[Entry] = field(default_factory=list)
    strategy: Strategy | None = None
    source: str = "admin"


class ChainEdit(Struct, forbid_unknown_fields=True):
    """``PUT /admin/routing/flows/{name}`` and ``PUT /admin/routing/chains/{model}``: the new
    entries, in order (reordering is a PUT with the entries in the new order)."""

    entries: list[Entry] = field(default_factory=list)
    strategy: Strategy | None = None


class RoutingView(Struct, kw_only=True):
    """``GET /admin/routing``."""

    smart_switch: bool = True
    #: the default strategy of chains that name none
    strategy: Strategy = "ordered"
    strategies: list[str] = field(default_factory=lambda: list(STRATEGIES))
    flows: list[Flow] = field(default_factory=list)
    chains: list[Chain] = field(default_factory=list)
    #: what an entry's ``provider`` may name: account names and provider types
    targets: list[str] = field(default_factory=list)


class RoutingPatch(Struct, forbid_unknown_fields=True):
    """``PATCH /admin/routing``: Smart Switch and the default strategy."""

    smart_switch: bool | UnsetType = UNSET
    strategy: Strategy | UnsetType = UNSET


# ---------------------------------------------------------------------------------------- settings


class Settings(Struct, kw_only=True):
    """``GET /admin/settings``."""

    #: used when a request names no model
    default_model: str | None = None
    #: model or flow serving background requests (model names matching ``background_patterns``)
    background_model: str | None = None
    background_patterns: list[str] = field(default_factory=list)
    #: start the remote-access tunnel with the server
    auto_start_tunnel: bool = False
    #: open the web view in a browser when the server starts
    auto_open: bool = False


class SettingsPatch(Struct, forbid_unknown_fields=True, kw_only=True):
    """``PATCH /admin/settings``: absent fields stay as they are; ``null`` clears a model."""

    default_model: str | None | UnsetType = UNSET
    background_model: str | None | UnsetType = UNSET
    background_patterns: list[str] | UnsetType = UNSET
    auto_start_tunnel: bool | UnsetType = UNSET
    auto_open: bool | UnsetType = UNSET


# ---------------------------------------------------------------------------------------- remote access


class ClientKeyInfo(Struct, kw_only=True):
    """``GET /admin/keys``: one client key (never the key itself, nor its hash)."""

    id: int
    name: str
    #: the first characters of the key (``aa-AbCdEfGh``), to tell keys apart
    prefix: str
    created_at: float
    last_used_at: float | None = None
    revoked: bool = False
    revoked_at: float | None = None
    #: optional limits (None: none)
    rpm_limit: int | None = None
    tokens_per_day: int | None = None
    #: requests and tokens (input + output) made with this key today (UTC)
    requests_today: int = 0
    tokens_today: int = 0


class KeyCreate(Struct, forbid_unknown_fields=True, kw_only=True):
    """``POST /admin/keys``."""

    name: str
    rpm_limit: int | None = None
    tokens_per_day: int | None = None


class KeyCreated(Struct, kw_only=True):
    """The answer to ``POST /admin/keys``: the only time ``secret`` (the key) is shown."""

    key: ClientKeyInfo
    secret: str

    def __repr__(self) -> str:  # never show the key in logs or tracebacks
        return f"KeyCreated(key={self.key!r}, secret='***')"


class KeyPatch(Struct, forbid_unknown_fields=True, kw_only=True):
    """``PATCH /admin/keys/{id}``: change a key's limits (``null`` removes one; absent stays)."""

    rpm_limit: int | None | UnsetType = UNSET
    tokens_per_day: int | None | UnsetType = UNSET


class TunnelTool(Struct, kw_only=True):
    """A tunnel tool antiapi can run, and whether this machine has it."""

    kind: str
    installed: bool = False
    #: the executable that would run
    path: str | None = None
    #: how to install it (shown when it is missing)
    install: str = ""
    #: what starting it exposes
    exposes: str = ""


class TunnelStatus(Struct, kw_only=True):
    """The tunnel now (``state``: "stopped" | "starting" | "running" | "restarting" | "failed")."""

    kind: str | None = None
    state: str = "stopped"
    #: the public URL while it runs (cloudflared and localtunnel pick a new one on every start)
    url: str | None = None
    #: why it failed or is restarting, with what the tool printed last
    error: str | None = None
    restarts: int = 0
    pid: int | None = None
    started_at: float | None = None
    last_output: list[str] = field(default_factory=list)


class RemoteView(Struct, kw_only=True):
    """``GET /admin/remote``: how the gateway can be reached, the tunnel and its settings."""

    #: the address the gateway listens on
    host: str = "127.0.0.1"
    #: listening beyond loopback (``--host``)
    exposed: bool = False
    #: every gateway request needs a client key now (exposed, a tunnel, or a key exists)
    keys_required: bool = False
    active_keys: int = 0
    tunnel: TunnelStatus = field(default_factory=TunnelStatus)
    #: the tunnel tool to start (setting): "cloudflared" | "ngrok" | "localtunnel" | None
    provider: str | None = None
    #: a path or command overriding the tool's executable (setting)
    binary: str | None = None
    #: an ngrok authtoken is saved (never shown)
    authtoken_set: bool = False
    #: start the tunnel with the server (the ``auto_start_tunnel`` setting)
    auto_start: bool = False
    tools: list[TunnelTool] = field(default_factory=list)


class RemotePatch(Struct, forbid_unknown_fields=True, kw_only=True):
    """``PATCH /admin/remote``: the tunnel settings (absent stays; ``null`` clears)."""

    provider: str | None | UnsetType = UNSET
    binary: str | None | UnsetType = UNSET
    authtoken: str | None | UnsetType = UNSET

    def __repr__(self) -> str:  # never show the authtoken in logs or tracebacks
        token = self.authtoken if self.authtoken is UNSET or self.authtoken is None else "***"
        return f"RemotePatch(provider={self.provider!r}, binary={self.binary!r}, authtoken={token!r})"


class TunnelStart(Struct, forbid_unknown_fields=True, kw_only=True):
    """``POST /admin/remote/tunnel``: start the tunnel (``provider`` None: the saved setting)."""

    provider: str | None = None


# ---------------------------------------------------------------------------------------- quota


class QuotaWindow(Struct, kw_only=True):
    """One usage window of an account (Codex 5-hour / weekly, Copilot premium requests)."""

    name: str
    used_percent: float | None = None
    remaining: float | None = None
    entitlement: float | None = None
    window_minutes: int | None = None
    #: epoch seconds
    resets_at: float | None = None


class Cooldown(Struct, kw_only=True):
    """A cooldown in force: the account (``model`` None) or one of its models is skipped/tried last."""

    until: float
    reason: str
    model: str | None = None
    #: "limit" | "unavailable" | "auth"
    category: str = "limit"
    hard: bool = True
    failures: int = 1


class AccountQuota(Struct, kw_only=True):
    """``GET /admin/quotas`` (one per account) and the ``quota`` event."""

    account: str
    type: str
    label: str | None = None
    enabled: bool = True
    #: "ok" | "limited" | "cooling_down" | "needs_sign_in" | "disabled"
    status: str = "ok"
    #: the highest window's used percent (None: the upstream reports no quota)
    used_percent: float | None = None
    windows: list[QuotaWindow] = field(default_factory=list)
    plan: str | None = None
    #: where the numbers came from ("headers", "usage-endpoint", ...)
    source: str | None = None
    updated_at: float | None = None
    limited_until: float | None = None
    detail: str | None = None
    cooldowns: list[Cooldown] = field(default_factory=list)


# ---------------------------------------------------------------------------------------- usage


class UsageAggregate(Struct, kw_only=True):
    """``GET /admin/usage?by=account|model|upstream_model|day``: one group."""

    key: str | None
    requests: int = 0
    errors: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int = 0
    reasoning_tokens: int = 0
    avg_latency_ms: float | None = None
    avg_ttft_ms: float | None = None


class RequestRecord(Struct, kw_only=True):
    """One finished request (the request log, ``GET /admin/requests`` and the ``request`` event).

    Mirrors ``antiapi.server.usage.UsageRecord`` field for field, so the server converts one with
    ``msgspec.convert(msgspec.structs.asdict(rec), RequestRecord)``.
    """

    time: float
    request_id: str
    endpoint: str = ""
    client_dialect: str = ""
    #: the model the client asked for ("" when it named none)
    model: str = ""
    status: int = 0
    latency_ms: float = 0.0
    stream: bool = False
    client_key: str | None = None
    #: what the request was routed as when that differs from ``model``
    target: str | None = None
    #: the account that served the request (or failed last)
    provider: str | None = None
    provider_type: str | None = None
    account: str | None = None
    upstream_model: str | None = None
    upstream_dialect: str | None = None
    ttft_ms: float | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int = 0
    reasoning_tokens: int = 0
    error: str | None = None
    #: every entry tried before the one that served, with why it failed
    attempts: list[str] = field(default_factory=list)
    #: every entry considered, in order: tried, skipped, served
    route: list[str] = field(default_factory=list)


class RequestQuery(Struct, kw_only=True):
    """Filters of ``GET /admin/requests`` (query parameters of the same names)."""

    #: the requested model, the routed target or the upstream model
    model: str | None = None
    #: the account name (provider) or the signed-in account label
    account: str | None = None
    #: "ok" (< 400), "error" (>= 400), an exact status ("429") or a class ("5xx")
    status: str | None = None
    #: epoch seconds
    since: float | None = None
    limit: int = 100


class ModelInfo(Struct, kw_only=True):
    """``GET /admin/models``: a name clients may ask for."""

    name: str
    #: "model" | "flow"
    kind: str = "model"
    #: the accounts that serve it, in route order
    accounts: list[str] = field(default_factory=list)


# ---------------------------------------------------------------------------------------- events


class RequestEvent(Struct, tag="request", tag_field="type"):
    record: RequestRecord


class QuotaEvent(Struct, tag="quota", tag_field="type"):
    quota: AccountQuota


class StatusEvent(Struct, tag="status", tag_field="type"):
    status: Status


class AccountsEvent(Struct, tag="accounts", tag_field="type"):
    accounts: list[AccountInfo]


class RoutingEvent(Struct, tag="routing", tag_field="type"):
    routing: RoutingView


class SettingsEvent(Struct, tag="settings", tag_field="type"):
    settings: Settings


class SignInEvent(Struct, tag="signin", tag_field="type"):
    flow: SignInFlow


class RemoteEvent(Struct, tag="remote", tag_field="type"):
    """The tunnel or the exposure changed (started, new URL, crashed, stopped, settings)."""

    remote: RemoteView


class KeysEvent(Struct, tag="keys", tag_field="type"):
    """A client key was created, revoked or changed."""

    keys: list[ClientKeyInfo]


AdminEvent = Union[
    RequestEvent, QuotaEvent, StatusEvent, AccountsEvent, RoutingEvent, SettingsEvent, SignInEvent, RemoteEvent, KeysEvent
]

_EVENT_CLASSES: tuple[type, ...] = (
    RequestEvent, QuotaEvent, StatusEvent, AccountsEvent, RoutingEvent, SettingsEvent, SignInEvent, RemoteEvent,
    KeysEvent,
)
#: SSE event name -> event Struct
EVENT_TYPES: dict[str, type] = {cls.__struct_config__.tag: cls for cls in _EVENT_CLASSES}  # type: ignore[attr-defined]
_EVENT_DECODERS = {name: msgspec.json.Decoder(cls) for name, cls in EVENT_TYPES.items()}
_encoder = msgspec.json.Encoder()


def encode_event(event: AdminEvent) -> tuple[str, bytes]:
    """``(sse event name, JSON data)`` for one event."""
    return type(event).__struct_config__.tag, _encoder.encode(event)  # type: ignore[attr-defined]


def decode_event(name: str | None, data: str | bytes) -> AdminEvent | None:
    """The event for an SSE frame, or ``None`` when its type is unknown (a newer server).

    Raises:
        msgspec.DecodeError / msgspec.ValidationError: a known event type with a broken body.
    """
    if name is None:  # a frame without "event:": read the type from the body
        try:
            name = msgspec.json.decode(data, type=_TypeOnly).type
        except (msgspec.DecodeError, msgspec.ValidationError):
            return None
    dec = _EVENT_DECODERS.get(name)
    if dec is None:
        return None
    return dec.decode(data)


class _TypeOnly(Struct):
    type: str | None = None


# ---------------------------------------------------------------------------------------- helpers

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:@+-]*$")


def entry_key(e: Entry) -> tuple[str, str | None, str | None]:
    return (e.provider, e.model, e.account)


def validate_chain(
    kind: Literal["flow", "chain"],
    name: str,
    entries: Iterable[Entry],
    strategy: str | None = None,
    targets: Collection[str] | None = None,
) -> list[str]:
    """Problems with a flow or chain edit, one readable line each (empty: fine to save).

    Args:
        kind: "flow" (every entry needs its upstream model) or "chain" (entries may leave the
            model out: the chain's model id is used; no entries means Smart Switch).
        name: the flow name or the chain's model id.
        entries: the entries in order.
        strategy: None (the default) or one of :data:`STRATEGIES`.
        targets: account names and provider types an entry may name (None: not checked).
    """
    problems: list[str] = []
    entries = list(entries)
    what = "flow" if kind == "flow" else "chain"
    if not name or not name.strip():
        problems.append(f"the {what} needs a name" if kind == "flow" else "the chain needs a model id")
    elif kind == "flow" and (name.startswith("route:") or not _NAME_RE.match(name)):
        problems.append(
            f"flow name {name!r}: use letters, digits and . _ - : @ + (no spaces, no 'route:' prefix)"
        )
    elif kind == "chain" and (name != name.strip() or any(c.isspace() for c in name)):
        problems.append(f"model id {name!r} must not contain spaces")
    if strategy is not None and strategy not in STRATEGIES:
        problems.append(f"strategy {strategy!r}: use one of {', '.join(STRATEGIES)}")
    if kind == "flow" and not entries:
        problems.append("a flow needs at least one entry")
    seen: set[tuple[str, str | None, str | None]] = set()
    known = set(targets) if targets is not None else None
    for i, e in enumerate(entries, 1):
        if not e.provider or not e.provider.strip():
            problems.append(f"entry {i}: choose an account or provider type")
            continue
        if known is not None and e.provider not in known:
            problems.append(f"entry {i}: {e.provider!r} is neither an account nor a provider type here")
        if kind == "flow" and not (e.model and e.model.strip()):
            problems.append(f"entry {i}: name the upstream model (flows have no default model)")
        key = entry_key(e)
        if key in seen:
            problems.append(f"entry {i}: duplicates an earlier entry")
        seen.add(key)
    return problems


def parse_status_filter(value: str | None) -> tuple[int, int] | None:
    """``"ok"``/``"error"``/``"429"``/``"5xx"`` -> an inclusive status range; None: no filter.

    Raises:
        ValueError: anything else (the message says what is accepted).
    """
    if value is None or value == "":
        return None
    v = value.strip().lower()
    if v == "ok":
        return (0, 399)
    if v in ("error", "errors", "failed"):
        return (400, 999)
    if re.fullmatch(r"[1-5]xx", v):
        base = int(v[0]) * 100
        return (base, base + 99)
    if re.fullmatch(r"\d{3}", v):
        return (int(v), int(v))
    raise ValueError(f"status {value!r}: use ok, error, a status code such as 429, or a class such as 5xx")


def request_matches(rec: RequestRecord, q: RequestQuery) -> bool:
    """Whether a record passes the filters of ``q`` (``limit`` is not applied here).

    ``model`` matches the requested model, the routed target or the upstream model; ``account``
    the account name or label; both are exact, case-insensitive.
    """
    if q.since is not None and rec.time < q.since:
        return False
    if q.model:
        m = q.model.lower()
        if m not in {(x or "").lower() for x in (rec.model, rec.target, rec.upstream_model)}:
            return False
    if q.account:
        a = q.account.lower()
        if a not in {(x or "").lower() for x in (rec.provider, rec.account)}:
            return False
    rng = parse_status_filter(q.status)
    if rng is not None and not (rng[0] <= rec.status <= rng[1]):
        return False
    return True
