"""Reading sweep and suite files from disk safely: plain files only, bounded in size, no duplicate keys or aliases."""

from __future__ import annotations

import stat
from pathlib import Path
from typing import Any

import yaml

from study.spec.base import ConfigError, shown


def read_yaml_file(path: Path, what: str) -> tuple[Any, bytes]:
    """The YAML data and raw bytes of a sweep or suite file: plain files only (never a FIFO or a
    device), at most MAX_SWEEP_BYTES, no duplicate keys or aliases; ConfigError names the file."""
    try:
        mode = path.stat().st_mode  # never opened before it is known to be a plain file
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such {what}") from None
    except OSError as err:
        raise ConfigError(f"{path}: cannot read {what} ({err.strerror})") from None
    if stat.S_ISDIR(mode):
        raise ConfigError(f"{path}: is a directory, not a {what} (try {path}/quick.yaml)")
    if not stat.S_ISREG(mode):
        raise ConfigError(f"{path}: is {file_kind(mode)}, not a {what}; a {what} is a plain YAML file")
    try:
        with path.open("rb") as handle:
            raw = handle.read(MAX_SWEEP_BYTES + 1)  # bounded even if the file grows meanwhile
    except PermissionError:
        raise ConfigError(f"{path}: cannot read {what}: permission denied (this user may not read it; "
                          f"e.g. chmod u+r {path})") from None
    except OSError as err:
        raise ConfigError(f"{path}: cannot read {what} ({err.strerror or err})") from None
    if len(raw) > MAX_SWEEP_BYTES:
        raise ConfigError(f"{path}: larger than {MAX_SWEEP_BYTES // 1024} KiB; a sweep file is short "
                          "(overrides only), and a long list of configurations belongs in several studies")
    text = _utf8_text(raw, path)
    try:
        return yaml.load(text, Loader=_UniqueKeyLoader), raw  # noqa: S506 - a SafeLoader subclass
    except RecursionError:  # PyYAML's parser recurses once per level: `[[[[...` 400 deep ends here
        raise ConfigError(f"{path}: malformed YAML: nested too deeply (a sweep file is a few levels deep)") from None
    except yaml.reader.ReaderError as err:
        # PyYAML's own text is two lines ending `in "<unicode string>", position 8`: say where instead.
        line, column = _line_and_column(text, err.position)
        character = "a NUL byte (U+0000)" if err.character == 0 else f"the control character U+{err.character:04X}"
        raise ConfigError(f"{path}: malformed YAML at line {line}, column {column}: {character} is not allowed in "
                          "YAML text; remove it (a sweep file is plain UTF-8 text)") from None
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(err, "problem", None) or " ".join(str(err).split())
        raise ConfigError(f"{path}: malformed YAML{where}: {problem}") from None


def _utf8_text(raw: bytes, path: Path) -> str:
    """The file's bytes as text; ConfigError, with where the first bad byte is, for any other encoding."""
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise ConfigError(f"{path}: not UTF-8 text (it starts with a UTF-16 byte-order mark); save it as UTF-8")
    # ASCII text saved as UTF-16 or UTF-32 without a byte-order mark is valid UTF-8 with a NUL after
    # (or before) every character: PyYAML would blame the first NUL, at "position 1".
    if len(raw) >= 4 and max(raw[0::2].count(0), raw[1::2].count(0)) * 10 >= 9 * (len(raw) // 2):
        raise ConfigError(f"{path}: not UTF-8 text (every other byte is NUL: it looks like UTF-16 or UTF-32 "
                          "without a byte-order mark); save it as UTF-8")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as err:
        line_start = raw.rfind(b"\n", 0, err.start) + 1
        line = raw.count(b"\n", 0, err.start) + 1
        column = len(raw[line_start:err.start].decode("utf-8", "replace")) + 1
        raise ConfigError(f"{path}: not UTF-8 text: byte 0x{raw[err.start]:02x} at line {line}, column {column} is "
                          "not valid UTF-8 (a Latin-1 or Windows-1252 file?); save it as UTF-8") from None


def _line_and_column(text: str, position: int) -> tuple[int, int]:
    """1-based line and column of character `position` of `text`."""
    return text.count("\n", 0, position) + 1, position - text.rfind("\n", 0, position)


MAX_SWEEP_BYTES = 1024 * 1024  # sweep files are a few hundred bytes; this bounds memory and validation time


def file_kind(mode: int) -> str:
    """What a file that is not a plain one is, for messages (`a FIFO`, `a character device`, ...)."""
    kinds = [(stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISCHR, "a character device"),
             (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"), (stat.S_ISDIR, "a directory")]
    return next((name for test, name in kinds if test(mode)), "not a plain file")


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that refuses a key written twice (plain YAML silently keeps the last one) and
    aliases (`*name`): a few hundred bytes of nested aliases expand to gigabytes (a "billion laughs")."""

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise yaml.composer.ComposerError(
                None, None, f"aliases (*{event.anchor[:40]}) are not allowed in sweep files; write the value out",
                event.start_mark,
            )
        return super().compose_node(parent, index)

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"key {shown(key)} appears twice", key_node.start_mark,
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)
