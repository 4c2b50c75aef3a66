"""Signed-in accounts' credentials on disk: ``<data_dir>/accounts/<provider>/<label>.json``.

Each file is written atomically with mode 0600 (temp file, fsync, rename) and holds one
account's tokens and metadata as JSON. Labels are the account's email or login; anything unsafe
for a file name is replaced. Nothing here logs or returns secrets in messages.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from antiapi.paths import save_text_atomic

_SAFE = re.compile(r"[^A-Za-z0-9@._+-]")


def _file_label(label: str) -> str:
    s = _SAFE.sub("_", label).strip(".") or "account"
    return s[:120]


class CredentialStore:
    def __init__(self, data_dir: Path) -> None:
        self.root = Path(data_dir) / "accounts"

    def _dir(self, provider: str) -> Path:
        return self.root / provider

    def path(self, provider: str, label: str) -> Path:
        return self._dir(provider) / f"{_file_label(label)}.json"

    def save(self, provider: str, label: str, data: dict[str, Any]) -> Path:
        d = self._dir(provider)
        d.mkdir(parents=True, exist_ok=True, mode=0o700)
        path = self.path(provider, label)
        save_text_atomic(path, json.dumps({"label": label, **data}, indent=2, sort_keys=True), mode=0o600)
        return path

    def load(self, provider: str, label: str) -> dict[str, Any] | None:
        path = self.path(provider, label)
        try:
            return json.loads(path.read_text())
        except FileNotFoundError:
            return None

    def labels(self, provider: str) -> list[str]:
        """Labels of the accounts of ``provider``, in sign-in (file creation) order."""
        d = self._dir(provider)
        if not d.is_dir():
            return []
        files = sorted(d.glob("*.json"), key=lambda p: (p.stat().st_ctime, p.name))
        out = []
        for f in files:
            try:
                out.append(json.loads(f.read_text()).get("label") or f.stem)
            except (OSError, ValueError):
                continue
        return out

    def remove(self, provider: str, label: str) -> bool:
        try:
            self.path(provider, label).unlink()
            return True
        except FileNotFoundError:
            return False
