"""Read, validate and resolve antiapi's config file into a frozen :class:`~antiapi.config.schema.Config`.

The only module of antiapi that reads ``os.environ`` (and only through the ``env`` mapping each
public function takes, so tests inject their own). It accepts two shapes, which may be mixed:

* antiapi's native sections ``server``, ``providers``, ``models``;
* LiteLLM's ``model_list`` unchanged; LiteLLM-only sections are ignored with a warning.

Every :class:`~antiapi.errors.ConfigError` starts with the file path, names the key path
(``model_list[2].litellm_params``) and says how to fix it. Secret values never appear in errors.

May import: antiapi.config.schema, antiapi.paths, antiapi.errors, msgspec, yaml, stdlib.
"""

from __future__ import annotations

import difflib
import os
import re
import stat
import typing
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import msgspec
import yaml

from antiapi import paths
from antiapi.config.schema import (
    DEFAULT_BASE_URLS,
    LITELLM_IGNORED_SECTIONS,
    LITELLM_PARAMS_KNOWN,
    LITELLM_PARAMS_SILENT,
    LITELLM_PARAMS_USED,
    LITELLM_PARAMS_WARN,
    LITELLM_PREFIXES,
    LITELLM_UNSUPPORTED,
    MODEL_INFO_CAPABILITIES,
    NATIVE_SECTIONS,
    PROVIDER_TYPES,
    ROUTING_SECTIONS,
    Capabilities,
    ChainSpec,
    CapabilitiesSpec,
    Config,
    DeploymentSpec,
    Flow,
    FlowEntry,
    FlowEntrySpec,
    FlowSpec,
    LiteLLMParamsSpec,
    LiteLLMPrefix,
    ModelRoute,
    ModelSpec,
    ProviderConfig,
    ProviderSpec,
    RoutingConfig,
    RoutingSpec,
    ServerSettings,
    ServerSpec,
)
from antiapi.errors import ConfigError

__all__ = ["ENV_DATA_DIR", "TEMPLATE", "load_config", "parse_config", "setup_hint"]

#: Environment variable that moves the data directory (and so the default config file).
ENV_DATA_DIR = "ANTI_API_DATA_DIR"

_T = TypeVar("_T")

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_ENV_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_ENV_PREFIXES = ("env:", "os.environ/")

#: Written when the config file does not exist. All comments: it parses to an empty config.
TEMPLATE = """\
# antiapi configuration
#
# This file is empty on purpose: antiapi starts, but serves no models until you add a provider.
# Uncomment one of the examples below, set the API key in your shell, and restart antiapi.
# Full reference: docs/configuration.md
#
# --- antiapi's own format -------------------------------------------------------------------
#
# server:
#   host: 127.0.0.1            # keep 127.0.0.1 unless other machines must reach antiapi
#   port: 8964
#
# providers:
#   openai:
#     type: openai             # openai | anthropic | gemini
#     api_key: env:OPENAI_API_KEY
#     models: [gpt-4.1, gpt-4.1-mini]
#   anthropic:
#     type: anthropic
#     api_key: env:ANTHROPIC_API_KEY
#
# models:
#   - name: claude-sonnet      # the name clients ask for
#     provider: anthropic
#     model: claude-sonnet-4-5
#     aliases: [sonnet]
#
# --- or paste a LiteLLM config as it is ---------------------------------------------------
#
# model_list:
#   - model_name: gpt-4o
#     litellm_params:
#       model: openai/gpt-4o
#       api_key: os.environ/OPENAI_API_KEY
"""


# --------------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------------


def load_config(
    path: str | os.PathLike[str] | None = None,
    *,
    data_dir: str | os.PathLike[str] | None = None,
    env: Mapping[str, str] | None = None,
) -> Config:
    """Load the config file, creating a commented template first when it does not exist.

    Args:
        path: the config file (``--config``); default ``<data_dir>/config.yaml``.
        data_dir: the data directory; default ``$ANTI_API_DATA_DIR``, else the platform's user data dir.
        env: environment used for ``ANTI_API_DATA_DIR`` and ``env:NAME`` secrets; default ``os.environ``.

    Raises:
        ConfigError: the file cannot be read or is invalid; the message starts with the file path.
    """
    environ: Mapping[str, str] = os.environ if env is None else env
    override = data_dir if data_dir not in (None, "") else (environ.get(ENV_DATA_DIR) or None)
    try:
        directory = paths.data_dir(override)
    except OSError as exc:
        where = str(Path(override).expanduser()) if override else str(paths.default_data_dir())
        raise ConfigError(
            f"cannot create the data directory ({exc.strerror or exc}). Choose another one with "
            f"--data-dir or {ENV_DATA_DIR}.",
            path=where,
        ) from None

    file = Path(path).expanduser().absolute() if path not in (None, "") else paths.config_path(directory)
    created = False
    if not file.exists():
        try:
            paths.save_text_atomic(file, TEMPLATE, mode=0o600)
        except OSError as exc:
            raise ConfigError(
                f"the file does not exist and a template cannot be written there ({exc.strerror or exc})",
                path=str(file),
            ) from None
        created = True
    try:
        text = file.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ConfigError("the file is not UTF-8 text; save it as UTF-8", path=str(file)) from None
    except OSError as exc:
        raise ConfigError(f"cannot read the file ({exc.strerror or exc})", path=str(file)) from None
    builder = _Builder(file, environ, file_mode=_file_mode(file))
    return builder.build(text, directory, created)


def parse_config(
    text: str,
    *,
    path: str | os.PathLike[str],
    data_dir: str | os.PathLike[str],
    env: Mapping[str, str] | None = None,
    created: bool = False,
) -> Config:
    """Build a :class:`Config` from config-file text (no file access; ``path`` is for messages)."""
    builder = _Builder(Path(path), os.environ if env is None else env)
    return builder.build(text, Path(data_dir), created)


def setup_hint(config: Config) -> str:
    """A few lines telling the user where the config file is and how to add a provider."""
    return (
        f"No models are configured yet. Edit {config.path} and add a provider, for example:\n"
        "  providers:\n"
        "    openai: {type: openai, api_key: env:OPENAI_API_KEY, models: [gpt-4.1]}\n"
        "or paste your LiteLLM model_list there, then restart antiapi."
    )


# --------------------------------------------------------------------------------------------
# YAML
# --------------------------------------------------------------------------------------------


class _DuplicateKey(Exception):
    def __init__(self, key: str, line: int, column: int) -> None:
        super().__init__(key)
        self.key, self.line, self.column = key, line, column


class _Loader(yaml.SafeLoader):
    """safe_load that refuses a key written twice in one mapping (YAML silently keeps the last)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge" or not isinstance(key_node, yaml.ScalarNode):
                continue
            if key_node.value in seen:
                mark = key_node.start_mark
                raise _DuplicateKey(str(key_node.value), mark.line + 1, mark.column + 1)
            seen.add(key_node.value)
        return super().construct_mapping(node, deep=deep)


def _parse_yaml(text: str, file: str) -> Any:
    try:
        return yaml.load(text, Loader=_Loader)  # noqa: S506 - _Loader is a SafeLoader
    except _DuplicateKey as exc:
        raise ConfigError(
            f"line {exc.line}, column {exc.column}: the key '{exc.key}' appears twice in the same "
            "section; keep one (YAML would silently use the last)",
            path=file,
        ) from None
    except yaml.MarkedYAMLError as exc:
        # Build the message ourselves: PyYAML's own text quotes the offending line, which may hold a key.
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
        problem = exc.problem or exc.context or "invalid YAML"
        raise ConfigError(
            f"{where}invalid YAML: {problem}. Check the indentation (spaces, not tabs) and put quotes "
            "around values that contain ': ' or ' #'",
            path=file,
        ) from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"invalid YAML: {type(exc).__name__}", path=file) from None


# --------------------------------------------------------------------------------------------
# msgspec errors -> plain English
# --------------------------------------------------------------------------------------------

_MSGSPEC_AT = re.compile(r"^(?P<msg>.*?)(?: - at `(?P<path>[^`]*)`)?$", re.S)
_MSGSPEC_KEY_AT = re.compile(r"^(?P<msg>.*?) - at `key` in `(?P<path>[^`]*)`$", re.S)
_TYPE_WORDS = {
    "int": "a whole number",
    "float": "a number",
    "str": "a string",
    "bool": "true or false",
    "array": "a list",
    "object": "a mapping (key: value lines)",
    "null": "nothing",
}


def _words(types: str) -> str:
    return " or ".join(_TYPE_WORDS.get(t.strip(), t.strip()) for t in types.split("|"))


def _join(prefix: str, rest: str) -> str:
    if not rest:
        return prefix
    if rest.startswith("["):
        return prefix + rest
    return f"{prefix}.{rest}" if prefix else rest


def _struct_at(root: type, segments: list[str]) -> Any:
    """The type found by following field names from ``root`` (list/dict/Optional unwrapped)."""
    current: Any = root
    for seg in segments:
        current = _unwrap(current)
        if not (isinstance(current, type) and issubclass(current, msgspec.Struct)):
            return None
        fields = {f.name: f.type for f in msgspec.structs.fields(current)}
        if seg not in fields:
            return None
        current = fields[seg]
    return _unwrap(current)


def _unwrap(tp: Any) -> Any:
    """Strip Annotated, Optional/Union-with-None, list[...] and dict[..., ...] down to the element type."""
    while True:
        origin = typing.get_origin(tp)
        args = typing.get_args(tp)
        if origin is typing.Annotated:
            tp = args[0]
        elif origin in (list, tuple):
            tp = args[0]
        elif origin is dict:
            tp = args[1]
        elif origin is typing.Union or type(tp).__name__ == "UnionType":
            rest = [a for a in args if a not in (type(None), msgspec.UnsetType)]
            if len(rest) != 1:
                return tp
            tp = rest[0]
        else:
            return tp


def _convert(value: Any, target: type[_T], where: str, file: str) -> _T:
    """msgspec.convert with errors rewritten as ConfigError naming ``where`` plus the inner path."""
    try:
        return msgspec.convert(value, target)
    except msgspec.ValidationError as exc:
        raise _translate(str(exc), target, where, file) from None


def _translate(raw: str, target: type, where: str, file: str) -> ConfigError:
    if mk := _MSGSPEC_KEY_AT.match(raw):  # "... - at `key` in `$.headers`": a mapping key's type
        msg, inner = mk.group("msg").replace("Expected", "Keys here must be", 1), mk.group("path")
    else:
        m = _MSGSPEC_AT.match(raw)
        msg = (m.group("msg") if m else raw).strip()
        inner = (m.group("path") or "$") if m else "$"
    inner = inner.removeprefix("$").removeprefix(".")
    key = _join(where, inner)
    segments = [s for s in re.split(r"\.|\[[^\]]*\]", inner) if s]

    if mm := re.match(r"^Object contains unknown field `(.*)`$", msg):
        bad = mm.group(1)
        struct = _struct_at(target, segments)
        known = [f.name for f in msgspec.structs.fields(struct)] if struct is not None else []
        return ConfigError(_unknown_key_text(bad, known), path=file, key=key)
    if mm := re.match(r"^Object missing required field `(.*)`$", msg):
        return ConfigError(f"the required key '{mm.group(1)}' is missing; add it", path=file, key=key)
    if mm := re.match(r"^Expected `([^`]*)`, got `([^`]*)`$", msg):
        want, got = mm.group(1), mm.group(2)
        fix = ""
        if "str" in want.split(" | ") and got in ("int", "float", "bool"):
            fix = "; put the value in quotes"
        elif got == "str" and want.split(" | ")[0] in ("int", "float"):
            fix = "; write the number without quotes"
        elif got == "str" and want.split(" | ")[0] == "bool":
            fix = "; write true or false without quotes"
        elif got == "null":
            fix = "; give it a value or remove the key"
        return ConfigError(f"expected {_words(want)}, got {_words(got)}{fix}", path=file, key=key)
    if mm := re.match(r"^Keys here must be `([^`]*)`, got `([^`]*)`$", msg):
        return ConfigError(
            f"keys here must be {_words(mm.group(1))}, got {_words(mm.group(2))}; put the key in quotes",
            path=file,
            key=key,
        )
    if mm := re.match(r"^Expected `([^`]*)` (>=|<=|>|<) (\S+)$", msg):
        return ConfigError(
            f"must be {_words(mm.group(1))} {mm.group(2)} {mm.group(3)}", path=file, key=key
        )
    if mm := re.match(r"^Invalid enum value (.*)$", msg):
        choices = _literal_choices(_struct_at(target, segments))
        listing = f"; use one of: {', '.join(choices)}" if choices else ""
        return ConfigError(f"{mm.group(1)} is not a valid value{listing}", path=file, key=key)
    return ConfigError(msg, path=file, key=key)


def _literal_choices(tp: Any) -> list[str]:
    if typing.get_origin(tp) is typing.Literal:
        return [str(a) for a in typing.get_args(tp)]
    return []


def _unknown_key_text(bad: str, known: Iterable[str]) -> str:
    known = list(known)
    close = difflib.get_close_matches(bad, known, n=1)
    if close:
        return f"unknown key '{bad}' (did you mean '{close[0]}'?)"
    listing = f"; valid keys: {', '.join(sorted(known))}" if known else ""
    return f"unknown key '{bad}'{listing}"


# --------------------------------------------------------------------------------------------
# Building the Config
# --------------------------------------------------------------------------------------------


class _Builder:
    """One use: turns decoded YAML into a Config, collecting warnings on the way."""

    def __init__(self, file: Path, env: Mapping[str, str], *, file_mode: int | None = None) -> None:
        self.file = str(file)
        self.path = file
        self.env = env
        self.file_mode = file_mode
        self.warnings: list[str] = []
        self.providers: dict[str, ProviderConfig] = {}
        self.native_provider_models: list[tuple[str, list[str]]] = []
        self.routes: list[tuple[ModelRoute, tuple[str, ...], str]] = []  # route, aliases, key path

    # -- helpers ------------------------------------------------------------------------------

    def error(self, message: str, key: str | None = None) -> ConfigError:
        return ConfigError(message, path=self.file, key=key)

    def resolve(self, value: str | None, key: str) -> str | None:
        """Resolve ``env:NAME`` / ``os.environ/NAME``; other strings are literal."""
        if value is None:
            return None
        name = _env_ref(value)
        if name is None:
            return value
        if not _ENV_NAME_RE.match(name):
            prefix = next(p for p in _ENV_PREFIXES if value.startswith(p))
            raise self.error(
                f"'{prefix}' must be followed by an environment variable name (letters, digits and _), "
                f"e.g. {prefix}OPENAI_API_KEY",
                key,
            )
        resolved = self.env.get(name)
        if not resolved:
            state = "is empty" if resolved == "" else "is not set"
            raise self.error(
                f"environment variable {name} {state}. Export it before starting antiapi "
                f"(export {name}=...), or remove this key",
                key,
            )
        return resolved

    def default_key(self, names: tuple[str, ...]) -> str | None:
        for name in names:
            if value := self.env.get(name):
                return value
        return None

    def check_url(self, url: str, key: str) -> str:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise self.error(
                "must be a full URL starting with http:// or https://, e.g. https://api.openai.com/v1",
                key,
            )
        return url.rstrip("/")

    def check_str_map(self, value: Any, key: str) -> None:
        """Header maps: name the exact header when a key or value is not a string."""
        if not isinstance(value, dict):
            return  # absent, or the wrong type: msgspec reports it
        for k, v in value.items():
            if not isinstance(k, str):
                raise self.error(f"header names must be strings, got {k!r}; put it in quotes", key)
            if not isinstance(v, str):
                raise self.error(
                    f"expected a string, got {_words(_yaml_type(v))}; put the value in quotes", f"{key}.{k}"
                )

    def section(self, raw: Mapping[str, Any], name: str, kind: type) -> Any:
        value = raw.get(name)
        if value is None:
            return kind()
        if not isinstance(value, kind):
            what = "a mapping (name: settings)" if kind is dict else "a list (lines starting with '- ')"
            raise self.error(f"expected {what}, got {_words(_yaml_type(value))}", name)
        return value

    # -- top level ----------------------------------------------------------------------------

    def build(self, text: str, data_dir: Path, created: bool) -> Config:
        raw = _parse_yaml(text, self.file)
        if raw is None:
            raw = {}
        if not isinstance(raw, dict):
            raise self.error(
                f"the file must be a mapping of sections (server:, providers:, models:, model_list:), "
                f"got {_words(_yaml_type(raw))}"
            )
        known = [*NATIVE_SECTIONS, *ROUTING_SECTIONS, "model_list", *LITELLM_IGNORED_SECTIONS]
        for key in raw:
            if not isinstance(key, str):
                raise self.error(f"top-level keys must be section names, got {key!r}")
            if key in NATIVE_SECTIONS or key in ROUTING_SECTIONS or key == "model_list":
                continue
            if key in LITELLM_IGNORED_SECTIONS:
                self.warnings.append(
                    f"{self.file}: {key}: LiteLLM section ignored by antiapi ({LITELLM_IGNORED_SECTIONS[key]})"
                )
                continue
            close = difflib.get_close_matches(key, known, n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            raise self.error(
                f"unknown top-level key '{key}'{hint}. antiapi reads {', '.join(NATIVE_SECTIONS)} and "
                "LiteLLM's model_list"
            )

        if self.file_mode is not None and self.file_mode & 0o077 and _has_literal_secret(raw):
            self.warnings.append(
                f"{self.file}: the file holds an API key and other users can read it (mode "
                f"{self.file_mode:o}). Run chmod 600 {self.file}, or use api_key: env:NAME"
            )
        server = self.server(raw)
        self.native_providers(self.section(raw, "providers", dict))
        self.native_models(self.section(raw, "models", list))
        self.litellm_models(self.section(raw, "model_list", list))
        models = self.route_table()
        flows = self.flows(self.section(raw, "flows", dict), models)
        routing = self.routing(raw.get("routing"))
        return Config(
            path=self.path,
            data_dir=data_dir,
            created=created,
            server=server,
            providers=dict(self.providers),
            models=models,
            warnings=list(self.warnings),
            env_settings={k: v for k, v in self.env.items() if k.startswith("ANTI_API_")},
            flows=flows,
            routing=routing,
        )

    def server(self, raw: Mapping[str, Any]) -> ServerSettings:
        value = raw.get("server")
        spec = ServerSpec() if value is None else _convert(value, ServerSpec, "server", self.file)
        return ServerSettings(
            host=spec.host,
            port=spec.port,
            max_body_bytes=int(spec.max_body_mb * 1024 * 1024),
            connect_timeout=float(spec.timeouts.connect),
            first_byte_timeout=float(spec.timeouts.first_byte),
            idle_timeout=float(spec.timeouts.idle),
            cors_origins=tuple(self.origins(spec.cors_origins)),
            allowed_hosts=tuple(h.strip().lower() for h in spec.allowed_hosts if h.strip()),
        )

    def origins(self, values: list[str]) -> list[str]:
        """``server.cors_origins``: ``scheme://host[:port]`` each (no path), or ``*``."""
        out = []
        for i, v in enumerate(values):
            o = v.strip().rstrip("/")
            if o != "*" and not re.fullmatch(r"https?://[^/\s]+", o):
                raise ConfigError(
                    f"{self.file}: server.cors_origins[{i}]: {v!r} is not an origin; write it as the browser sends "
                    "it, e.g. http://localhost:3000 (scheme, host and port, no path)"
                )
            out.append(o)
        return out

    # -- routing ------------------------------------------------------------------------------

    def flow_entries(self, entries: list[FlowEntrySpec], key: str, *, need_model: bool) -> tuple[FlowEntry, ...]:
        signed_in = ("codex", "copilot")
        out = []
        for j, e in enumerate(entries):
            ekey = f"{key}[{j}]"
            p = e.provider.strip()
            ok = p in self.providers or p in PROVIDER_TYPES
            if not ok and ":" in p:
                ptype, _, label = p.partition(":")
                ok = ptype in signed_in and bool(label) or ptype in {
                    pc.name for pc in self.providers.values() if pc.type in signed_in and pc.account is None
                }
            if not ok:
                choices = [*self.providers, *PROVIDER_TYPES]
                close = difflib.get_close_matches(p, choices, n=1)
                hint = f" (did you mean '{close[0]}'?)" if close else ""
                raise self.error(
                    f"'{p}' is neither a provider defined under providers ({', '.join(self.providers) or 'none'}) "
                    f"nor a provider type ({', '.join(PROVIDER_TYPES)}){hint}; a signed-in account is written "
                    "codex:<label> or copilot:<label>",
                    f"{ekey}.provider",
                )
            if need_model and not (e.model or "").strip():
                raise self.error("the upstream model id this entry asks for is required (model: ...)", f"{ekey}.model")
            out.append(FlowEntry(provider=p, model=(e.model or "").strip() or None, account=e.account))
        return tuple(out)

    def flows(self, raw: dict[Any, Any], models: Mapping[str, Any]) -> dict[str, Flow]:
        out: dict[str, Flow] = {}
        for name, value in raw.items():
            key = f"flows.{name}"
            if not isinstance(name, str) or not _NAME_RE.match(name):
                raise self.error(
                    "flow names may use letters, digits, '.', '_' and '-' and must start with a letter or digit",
                    key,
                )
            if isinstance(value, list):
                entries, strategy, ekey = _convert(value, list[FlowEntrySpec], key, self.file), None, key
            elif isinstance(value, dict):
                spec = _convert(value, FlowSpec, key, self.file)
                entries, strategy, ekey = spec.entries, spec.strategy, f"{key}.entries"
            else:
                raise self.error(
                    f"expected a list of entries ({{provider: ..., model: ...}}) or a mapping with entries "
                    f"and strategy, got {_words(_yaml_type(value))}",
                    key,
                )
            if not entries:
                raise self.error("a flow needs at least one entry ({provider: ..., model: ...})", key)
            if name in models:
                self.warnings.append(
                    f"{self.file}: {key}: the flow has the name of a model; clients asking for '{name}' get the flow"
                )
            out[name] = Flow(name=name, entries=self.flow_entries(entries, ekey, need_model=True), strategy=strategy)
        return out

    def routing(self, value: Any) -> RoutingConfig:
        if value is None:
            return RoutingConfig()
        spec = _convert(value, RoutingSpec, "routing", self.file)
        settings = {
            f.name: getattr(spec, f.name)
            for f in msgspec.structs.fields(RoutingSpec)
            if f.name != "chains" and getattr(spec, f.name) is not None
        }
        if "background_patterns" in settings:
            settings["background_patterns"] = list(settings["background_patterns"])
        chains: dict[str, Flow] = {}
        for model, chain in spec.chains.items():
            ckey = f"routing.chains.{model}"
            assert isinstance(chain, ChainSpec)
            chains[model] = Flow(
                name=model, entries=self.flow_entries(chain.entries, f"{ckey}.entries", need_model=False),
                strategy=chain.strategy,
            )
        return RoutingConfig(settings=settings, chains=chains)

    # -- native -------------------------------------------------------------------------------

    def native_providers(self, raw: dict[Any, Any]) -> None:
        for name, value in raw.items():
            key = f"providers.{name}"
            if not isinstance(name, str) or not _NAME_RE.match(name):
                raise self.error(
                    "provider names may use letters, digits, '.', '_' and '-' and must start with a "
                    "letter or digit",
                    key,
                )
            if value is None:
                raise self.error("give this provider its settings (at least type: openai|anthropic|gemini)", key)
            if isinstance(value, dict):
                self.check_str_map(value.get("headers"), f"{key}.headers")
            spec = _convert(value, ProviderSpec, key, self.file)
            if spec.base_url is not None:
                base = self.check_url(self.resolve(spec.base_url, f"{key}.base_url") or "", f"{key}.base_url")
            else:
                base = DEFAULT_BASE_URLS[spec.type]
            base = _normalise_base(spec.type, base)
            if isinstance(spec.api_key, msgspec.UnsetType):
                api_key = self.fallback_key(spec.type, base, key)
            else:
                api_key = self.resolve(spec.api_key, f"{key}.api_key")
            headers = {h: self.resolve(v, f"{key}.headers.{h}") or "" for h, v in spec.headers.items()}
            self.providers[name] = ProviderConfig(
                name=name,
                type=spec.type,
                base_url=base,
                api_key=api_key,
                headers=headers,
                verify_tls=spec.verify_tls,
                models=tuple(dict.fromkeys(spec.models)),
                reasoning_models=tuple(spec.reasoning_models),
                api=spec.api,
                account=spec.account,
                endpoints={k: self.resolve(v, f"{key}.endpoints.{k}") or "" for k, v in spec.endpoints.items()},
                options=dict(spec.options),
            )
            self.native_provider_models.append((name, list(dict.fromkeys(spec.models))))

    def fallback_key(self, ptype: str, base: str, key: str) -> str | None:
        """api_key left out: use the usual variable, but only for the official endpoint."""
        if ptype not in LITELLM_PREFIXES:
            return None  # signed-in providers (codex, copilot) carry their own credentials
        prefix = LITELLM_PREFIXES[ptype]
        if base != _normalise_base(ptype, DEFAULT_BASE_URLS[ptype]):
            return None  # never send an official key to another server
        value = self.default_key(prefix.key_env)
        if value is None:
            self.warnings.append(
                f"{self.file}: {key}: no api_key and {prefix.key_env[0]} is not set; requests will "
                f"be sent without a key. Set api_key: env:{prefix.key_env[0]}"
            )
        return value

    def native_models(self, raw: list[Any]) -> None:
        for i, value in enumerate(raw):
            key = f"models[{i}]"
            spec = _convert(value, ModelSpec, key, self.file)
            if not spec.name.strip():
                raise self.error("must not be empty", f"{key}.name")
            if spec.provider not in self.providers:
                close = difflib.get_close_matches(spec.provider, list(self.providers), n=1)
                hint = f" (did you mean '{close[0]}'?)" if close else ""
                defined = ", ".join(self.providers) or "none"
                raise self.error(
                    f"no provider named '{spec.provider}'{hint}; providers defined under providers: {defined}",
                    f"{key}.provider",
                )
            caps = spec.capabilities or CapabilitiesSpec()
            route = ModelRoute(
                name=spec.name,
                provider=spec.provider,
                upstream_model=spec.model or spec.name,
                capabilities=Capabilities(
                    tools=caps.tools, images=caps.images, thinking=caps.thinking, streaming=caps.streaming
                ),
            )
            self.routes.append((route, tuple(spec.aliases), key))

    # -- LiteLLM ------------------------------------------------------------------------------

    def litellm_models(self, raw: list[Any]) -> None:
        groups: dict[tuple[Any, ...], str] = {}
        for i, value in enumerate(raw):
            key = f"model_list[{i}]"
            dep = _convert(value, DeploymentSpec, key, self.file)
            pkey = f"{key}.litellm_params"
            if not dep.model_name.strip():
                raise self.error("must not be empty; it is the name clients ask for", f"{key}.model_name")
            self.check_params(dep.litellm_params, pkey, dep.model_name)
            for hkey in ("headers", "extra_headers"):
                self.check_str_map(dep.litellm_params.get(hkey), f"{pkey}.{hkey}")
            params = _convert(dep.litellm_params, LiteLLMParamsSpec, pkey, self.file)
            if "*" in dep.model_name or "*" in params.model:
                self.warnings.append(
                    f"{self.file}: {key}: wildcard model '{dep.model_name}' skipped; antiapi routes exact "
                    "names only. List the models, or use a provider's models: list"
                )
                continue
            prefix_name, upstream = self.split_model(params, f"{pkey}.model")
            prefix = LITELLM_PREFIXES[prefix_name]

            base_ref = params.api_base if params.api_base is not None else params.base_url
            base_key = f"{pkey}.{'api_base' if params.api_base is not None else 'base_url'}"
            if base_ref is None:
                if prefix.base_url is None:
                    raise self.error(
                        f"'{prefix_name}/' models need api_base, the URL of your server "
                        "(e.g. http://localhost:8000/v1)",
                        pkey,
                    )
                base = prefix.base_url
            else:
                base = self.check_url(self.resolve(base_ref, base_key) or "", base_key)
            if prefix.append_v1 and not base.endswith("/v1"):
                base += "/v1"
            base = _normalise_base(prefix.type, base)
            official = prefix.base_url is not None and base == _normalise_base(
                prefix.type, prefix.base_url + ("/v1" if prefix.append_v1 else "")
            )

            if params.api_key is not None:
                api_key = self.resolve(params.api_key, f"{pkey}.api_key")
                key_id: tuple[str, ...] = _ref_identity(params.api_key)
            elif official and prefix.key_env:
                api_key = self.default_key(prefix.key_env)
                key_id = ("default", *prefix.key_env)
            else:
                api_key, key_id = None, ("none",)

            headers: dict[str, str] = {}
            for hkey, source in (("headers", params.headers), ("extra_headers", params.extra_headers)):
                for h, v in (source or {}).items():
                    headers[h] = self.resolve(v, f"{pkey}.{hkey}.{h}") or ""
            if params.organization is not None:
                if prefix.type == "openai":
                    headers["OpenAI-Organization"] = self.resolve(params.organization, f"{pkey}.organization") or ""
                else:
                    self.warnings.append(f"{self.file}: {pkey}.organization: ignored for '{prefix_name}/' models")
            verify = True
            if isinstance(params.ssl_verify, bool):
                verify = params.ssl_verify
            elif isinstance(params.ssl_verify, str):
                self.warnings.append(
                    f"{self.file}: {pkey}.ssl_verify: custom CA bundles are not supported; using the system's"
                )

            identity = (prefix.type, base, key_id, tuple(sorted(headers.items())), verify)
            name = groups.get(identity)
            if name is None:
                name = self.new_provider_name(prefix, base)
                groups[identity] = name
                self.providers[name] = ProviderConfig(
                    name=name, type=prefix.type, base_url=base, api_key=api_key, headers=headers, verify_tls=verify
                )
            provider = self.providers[name]
            if upstream not in provider.models:
                self.providers[name] = _replace_models(provider, (*provider.models, upstream))

            caps = self.model_info_caps(dep.model_info or {}, f"{key}.model_info")
            self.routes.append((ModelRoute(dep.model_name, name, upstream, caps), (), key))

    def check_params(self, params: dict[str, Any], key: str, model_name: str) -> None:
        ignored: list[str] = []
        for k in params:
            if not isinstance(k, str):
                raise self.error(f"keys must be strings, got {k!r}", key)
            if k in LITELLM_PARAMS_USED or k in LITELLM_PARAMS_SILENT:
                continue
            if k in LITELLM_PARAMS_WARN:
                ignored.append(k)
                continue
            close = difflib.get_close_matches(k, sorted(LITELLM_PARAMS_KNOWN), n=1, cutoff=0.8)
            if close:
                raise self.error(f"unknown key '{k}' (did you mean '{close[0]}'?)", key)
            ignored.append(k)
        if ignored:
            self.warnings.append(
                f"{self.file}: {key} ({model_name}): antiapi ignores {', '.join(ignored)} "
                "(per-deployment limits, timeouts, retries and default request parameters are LiteLLM features)"
            )

    def split_model(self, params: LiteLLMParamsSpec, key: str) -> tuple[str, str]:
        model = params.model.strip()
        if params.custom_llm_provider:
            prefix, upstream = params.custom_llm_provider, model
            if model.startswith(prefix + "/"):
                upstream = model[len(prefix) + 1 :]
        elif "/" in model:
            prefix, upstream = model.split("/", 1)
        else:
            prefix, upstream = "openai", model
        supported = ", ".join(f"{p}/" for p in LITELLM_PREFIXES)
        if prefix not in LITELLM_PREFIXES:
            if prefix in LITELLM_UNSUPPORTED:
                why = f"antiapi cannot talk to LiteLLM's '{prefix}' provider"
            else:
                why = f"'{prefix}' is not a provider prefix antiapi knows"
            raise self.error(
                f"'{model}': {why}. Supported prefixes: {supported} (no prefix means openai/). For any "
                "OpenAI-compatible server write openai/<model> with api_base",
                key,
            )
        if not upstream:
            raise self.error(f"'{model}' names no model after '{prefix}/'", key)
        return prefix, upstream

    def model_info_caps(self, info: dict[str, Any], key: str) -> Capabilities:
        values: dict[str, bool | None] = {}
        for flag, cap in MODEL_INFO_CAPABILITIES.items():
            v = info.get(flag)
            if v is not None and not isinstance(v, bool):
                raise self.error(f"expected true or false, got {_words(_yaml_type(v))}", f"{key}.{flag}")
            values[cap] = v
        return Capabilities(**values)

    def new_provider_name(self, prefix: LiteLLMPrefix, base: str) -> str:
        stem = prefix.family
        if prefix.family in ("openai", "vllm") and (prefix.base_url is None or base != prefix.base_url):
            stem = _host_name(base) or prefix.family
        name, n = stem, 2
        while name in self.providers:
            name, n = f"{stem}-{n}", n + 1
        return name

    # -- routing table ------------------------------------------------------------------------

    def route_table(self) -> dict[str, list[ModelRoute]]:
        table: dict[str, list[ModelRoute]] = {}
        for route, _, _ in self.routes:
            table.setdefault(route.name, []).append(route)
        alias_of: dict[str, str] = {}
        for route, aliases, key in self.routes:
            for j, alias in enumerate(aliases):
                akey = f"{key}.aliases[{j}]"
                if not alias.strip():
                    raise self.error("must not be empty", akey)
                if alias in table:
                    raise self.error(
                        f"'{alias}' is already a model name; an alias must name no other model", akey
                    )
                owner = alias_of.setdefault(alias, route.name)
                if owner != route.name:
                    raise self.error(f"'{alias}' is already an alias of '{owner}'; pick another alias", akey)
        # Ids a provider lists in `models:` are routable by themselves unless an entry claims the name.
        implicit: dict[str, list[ModelRoute]] = {}
        for provider, ids in self.native_provider_models:
            for model_id in ids:
                if model_id not in table and model_id not in alias_of:
                    implicit.setdefault(model_id, []).append(ModelRoute(model_id, provider, model_id))
        table.update(implicit)
        for alias, owner in alias_of.items():
            table[alias] = list(table[owner])
        return table


# --------------------------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------------------------


def _env_ref(value: str) -> str | None:
    for prefix in _ENV_PREFIXES:
        if value.startswith(prefix):
            return value[len(prefix) :].strip()
    return None


def _ref_identity(value: str) -> tuple[str, ...]:
    """How a key is written, for grouping: env:X and os.environ/X are the same key."""
    name = _env_ref(value)
    return ("env", name) if name is not None else ("literal", value)


def _normalise_base(ptype: str, base: str) -> str:
    """Drop a trailing slash and the API version path the anthropic/gemini providers add themselves."""
    base = base.rstrip("/")
    suffixes = {"anthropic": ("/v1/messages", "/v1"), "gemini": ("/v1beta/models", "/v1beta", "/v1")}
    for suffix in suffixes.get(ptype, ()):
        if base.endswith(suffix):
            base = base[: -len(suffix)]
            break
    return base


def _host_name(url: str) -> str:
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    if host.startswith("api."):
        host = host[4:]
    if host in ("localhost", "127.0.0.1", "::1", "0.0.0.0") and parts.port:
        host = f"{host}-{parts.port}"
    return re.sub(r"[^a-z0-9._-]+", "-", host).strip("-.")


def _replace_models(provider: ProviderConfig, models: tuple[str, ...]) -> ProviderConfig:
    return ProviderConfig(
        name=provider.name,
        type=provider.type,
        base_url=provider.base_url,
        api_key=provider.api_key,
        headers=provider.headers,
        verify_tls=provider.verify_tls,
        models=models,
        reasoning_models=provider.reasoning_models,
        api=provider.api,
        account=provider.account,
        endpoints=provider.endpoints,
        options=provider.options,
    )


def _yaml_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "str"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def _file_mode(file: Path) -> int | None:
    """Permission bits of the file on POSIX (None elsewhere or when unknown)."""
    if os.name != "posix":
        return None
    try:
        return stat.S_IMODE(file.stat().st_mode)
    except OSError:
        return None


def _has_literal_secret(node: Any) -> bool:
    if isinstance(node, dict):
        for k, v in node.items():
            if k == "api_key" and isinstance(v, str) and v and _env_ref(v) is None:
                return True
            if _has_literal_secret(v):
                return True
    elif isinstance(node, list):
        return any(_has_literal_secret(v) for v in node)
    return False
