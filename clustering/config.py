"""Typed configuration: frozen dataclasses, loaded from YAML and overridden by command-line flags.

Every stage config is a frozen dataclass whose fields are declared with :func:`option`; the help text lives next to
the field, so ``--help``, YAML keys and the dataclass never drift apart. A job config includes its stages' options by
inheriting their dataclasses (``IngestConfig(DownloadOptions, DecodeOptions, StageOptions)``), so each option is
declared once, in its stage, and still reads as one flat flag and YAML key. Validation happens in ``__post_init__``
and raises :class:`ConfigError`, which the entrypoints print as one readable line.
"""

from __future__ import annotations

import argparse
import dataclasses
import inspect
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

import yaml

T = TypeVar("T")


class ConfigError(ValueError):
    """A configuration problem a user can fix; the message names the option and the rule."""


def option(default: Any, help: str, *, choices: tuple | None = None, flag: str | None = None) -> Any:
    """Declare a config field with its default, its help text and, optionally, allowed values."""
    meta = {"help": help, "choices": choices, "flag": flag}
    if isinstance(default, (list, dict, set)):
        raise TypeError("use tuples for sequence defaults so configs stay immutable")
    return dataclasses.field(default=default, metadata=meta)


def _flag(field: dataclasses.Field) -> str:
    return field.metadata.get("flag") or "--" + field.name.replace("_", "-")


def _unwrap_optional(tp: Any) -> tuple[Any, bool]:
    args = typing.get_args(tp)
    if typing.get_origin(tp) in (typing.Union, types.UnionType) and type(None) in args:
        rest = [a for a in args if a is not type(None)]
        return rest[0], True
    return tp, False


def _coerce(name: str, tp: Any, value: Any) -> Any:
    """Turn a YAML or CLI value into the field's declared type, or raise ConfigError naming the field."""
    base, optional = _unwrap_optional(tp)
    if value is None:
        if optional:
            return None
        raise ConfigError(f"{name}: a value is required")
    try:
        if typing.get_origin(base) is tuple:
            item_type = typing.get_args(base)[0]
            items = value.split(",") if isinstance(value, str) else value
            if not isinstance(items, (list, tuple)):
                items = [items]
            return tuple(_coerce(name, item_type, v) for v in items)
        if base is bool:
            if isinstance(value, bool):
                return value
            text = str(value).strip().lower()
            if text in ("1", "true", "yes", "on"):
                return True
            if text in ("0", "false", "no", "off"):
                return False
            raise ValueError
        if base is int and isinstance(value, float) and not value.is_integer():
            raise ValueError
        return base(value)
    except (TypeError, ValueError):
        type_name = getattr(base, "__name__", str(base))
        raise ConfigError(f"{name}: expected {type_name}, got {value!r}") from None


class OneLineErrorParser(argparse.ArgumentParser):
    """argparse, but a bad flag gets one line naming it (and a pointer to --help), not the whole usage block."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def _declaring_class(cls: type, name: str) -> type:
    """The dataclass in ``cls``'s hierarchy that declares field ``name`` (a stage's options, or ``cls`` itself)."""
    return next(base for base in reversed(cls.__mro__) if name in inspect.get_annotations(base))


def _fields_by_declaring_class(cls: type) -> dict[type, list[dataclasses.Field]]:
    """``cls``'s fields grouped by the class declaring them: the job's own options first, then each stage's."""
    groups: dict[type, list[dataclasses.Field]] = {cls: []}
    for field in dataclasses.fields(cls):
        groups.setdefault(_declaring_class(cls, field.name), []).append(field)
    return {owner: fields for owner, fields in groups.items() if fields}


def _first_line(text: str | None) -> str:
    return (text or "").strip().split("\n")[0].rstrip(".")


def build_parser(cls: type, *, prog: str, description: str) -> argparse.ArgumentParser:
    """An argparse parser with one flag per config field plus ``--config FILE.yaml``.

    Fields inherited from stage option dataclasses get a help section per stage.
    """
    parser = OneLineErrorParser(
        prog=prog, description=description, formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    parser.add_argument("--config", metavar="FILE.yaml", help="YAML file of options; flags given here override it")
    hints = typing.get_type_hints(cls)
    sections = _fields_by_declaring_class(cls)
    for owner, fields in sections.items():
        group = parser.add_argument_group(_first_line(owner.__doc__)) if len(sections) > 1 else parser
        for field in fields:
            _add_flag(group, field, hints[field.name])
    return parser


def _add_flag(group: argparse._ActionsContainer, field: dataclasses.Field, hint: Any) -> None:
    """One flag for ``field``: its help text, its choices, --x/--no-x for booleans, its default shown."""
    base, _ = _unwrap_optional(hint)
    kwargs: dict[str, Any] = {"help": field.metadata.get("help", ""), "default": argparse.SUPPRESS}
    if base is bool:
        kwargs["action"] = argparse.BooleanOptionalAction
    else:
        kwargs["metavar"] = field.name.upper()
        if field.metadata.get("choices"):
            kwargs["choices"] = field.metadata["choices"]
    # Show the dataclass default in --help even though argparse itself never fills it in (unless the help says it).
    if "default" not in kwargs["help"]:
        shown = ",".join(map(str, field.default)) if isinstance(field.default, tuple) else repr(field.default)
        kwargs["help"] += f" (default: {shown})"
    group.add_argument(_flag(field), dest=field.name, **kwargs)


def load_yaml(path: str | Path) -> dict:
    try:
        data = yaml.safe_load(Path(path).read_text())
    except OSError as exc:
        raise ConfigError(f"--config: cannot read {path}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"--config: {path} is not valid YAML: {exc}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"--config: {path} must hold a mapping of option: value")
    return data


def from_mapping(cls: type[T], values: dict, *, source: str = "config") -> T:
    """Build ``cls`` from a mapping (YAML keys may use - or _), rejecting unknown keys by name."""
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    kwargs = {}
    for key, value in values.items():
        name = str(key).replace("-", "_")
        if name not in names:
            raise ConfigError(f"{source}: unknown option {key!r}; see --help for the valid ones")
        kwargs[name] = _coerce(name, hints[name], value)
    try:
        return cls(**kwargs)
    except TypeError as exc:  # a required field without a value
        raise ConfigError(f"{source}: {exc}") from None


def parse_args(cls: type[T], argv: list[str] | None, *, prog: str, description: str) -> T:
    """Parse ``argv`` into ``cls``: YAML from ``--config`` first, then flags on top.

    argparse reports unknown flags itself with one line and exit status 2.
    """
    parser = build_parser(cls, prog=prog, description=description)
    args = vars(parser.parse_args(argv))
    config_path = args.pop("config", None)
    values = load_yaml(config_path) if config_path else {}
    values = {str(k).replace("-", "_"): v for k, v in values.items()}
    values.update(args)
    return from_mapping(cls, values, source=config_path or "arguments")


def to_dict(config: Any) -> dict:
    """A JSON-friendly dict of a config, for logs, manifests and reports."""
    return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(config).items()}


def stage_options(config: Any, cls: type[T]) -> T:
    """The ``cls`` part of a config that inherits it, as a plain ``cls`` (e.g. an IngestConfig's DownloadOptions)."""
    return cls(**{f.name: getattr(config, f.name) for f in dataclasses.fields(cls)})


# --- Ingest stage options ------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class DownloadOptions:
    """Download stage: how one URL is fetched. Timeouts are seconds, sizes bytes."""

    max_in_flight: int = option(64, "concurrent requests per download actor")
    per_host_limit: int = option(16, "concurrent requests per host per download actor (be polite to one server)")
    connect_timeout: float = option(10.0, "seconds to establish a connection")
    read_timeout: float = option(30.0, "seconds to read a whole response")
    max_bytes: int = option(20 * 2**20, "largest download in bytes; bigger bodies become 'too_large' rows")
    max_redirects: int = option(5, "redirects followed per URL (each hop passes the address guard)")
    retries: int = option(3, "retries for timeouts, connection errors, 429 and 5xx (jittered exponential backoff)")
    backoff_base: float = option(0.5, "seconds before the first retry; doubled per retry, jittered by 0.5-1.5x")
    retry_after_cap: float = option(30.0, "longest Retry-After wait honoured, in seconds")
    user_agent: str = option(
        "clipcluster/0.1 (+research image clustering; contact via project README)",
        "User-Agent header sent with every request",
    )
    allow_private_networks: bool = option(
        False,
        "allow loopback, private, link-local (cloud metadata), multicast and other special-purpose addresses "
        "(off: refused at every redirect)",
    )
    allow_local_files: bool = option(
        False,
        "read file:// URLs and local paths named in a URL table (off: a scraped table cannot read this machine's "
        "files; an image folder given as --input is read either way; /proc, /sys and /dev never are)",
    )

    def __post_init__(self) -> None:
        positive = ("max_in_flight", "per_host_limit", "connect_timeout", "read_timeout", "max_bytes")
        for name in positive:
            if getattr(self, name) <= 0:
                raise ConfigError(f"{name} must be positive, got {getattr(self, name)!r}")
        for name in ("max_redirects", "retries", "backoff_base", "retry_after_cap"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name} must be zero or more, got {getattr(self, name)!r}")


@dataclasses.dataclass(frozen=True)
class PreprocessSpec:
    """CLIP image preprocessing, read from the model's image processor so any CLIP checkpoint is handled.

    The decode stage resizes the shortest side to ``resize`` (bicubic) and centre-crops to ``crop`` as uint8; the embed
    stage rescales to [0, 1] and normalises with ``mean``/``std``, exactly as ``CLIPImageProcessor`` does.
    """

    resize: int = 224
    crop: tuple[int, int] = (224, 224)
    mean: tuple[float, float, float] = (0.48145466, 0.4578275, 0.40821073)
    std: tuple[float, float, float] = (0.26862954, 0.26130258, 0.27577711)


@dataclasses.dataclass(frozen=True)
class DecodeOptions:
    """Decode stage: safety limits and the stored thumbnail."""

    max_pixels: int = option(60_000_000, "largest image in pixels; bigger (decompression bombs) are 'too_large'")
    min_side: int = option(16, "smallest accepted image side in pixels; smaller are 'too_small'")
    thumbnail_size: int = option(128, "longest side of the stored JPEG thumbnail, in pixels")
    thumbnail_quality: int = option(80, "JPEG quality of the stored thumbnail, 1-95")
    formats: tuple[str, ...] = option(
        ("JPEG", "PNG", "GIF", "WEBP", "BMP", "TIFF", "MPO"),
        "image formats accepted, as Pillow names them (comma-separated); others are 'not_image'",
    )

    def __post_init__(self) -> None:
        for name in ("max_pixels", "min_side", "thumbnail_size"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"{name} must be positive, got {getattr(self, name)!r}")
        if not 1 <= self.thumbnail_quality <= 95:
            raise ConfigError(f"thumbnail_quality must be in 1..95, got {self.thumbnail_quality!r}")
        formats = tuple(dict.fromkeys(f.strip().upper() for f in self.formats if f.strip()))
        if not formats:
            raise ConfigError("formats: name at least one image format, e.g. JPEG,PNG")
        unknown = [f for f in formats if f not in _pillow_formats()]
        if unknown:
            raise ConfigError(f"formats: {', '.join(unknown)} not known to Pillow (e.g. JPEG, PNG, GIF, WEBP)")
        object.__setattr__(self, "formats", formats)  # frozen: normalise once, at construction


def _pillow_formats() -> frozenset[str]:
    from PIL import Image  # lazily: only configs that decode images need Pillow

    Image.init()
    return frozenset(Image.OPEN) | {"MPO"}  # multi-picture JPEGs open through the JPEG plugin


@dataclasses.dataclass(frozen=True)
class StageOptions:
    """Ray Data stages: batch sizes and the bounds of the autoscaling actor pools."""

    batch_size: int = option(64, "images per forward pass of the embed stage (halved on CUDA out-of-memory)")
    download_batch_size: int = option(256, "rows per fetch+decode batch (each distinct URL of a batch is fetched once)")
    embed_actors: int | None = option(
        None, "most embed actors (default: grows with the cluster, one per GPU; one on a cluster without GPUs)"
    )
    min_embed_actors: int = option(1, "embed actors kept from the start of the job")
    num_gpus_per_actor: float | None = option(
        None, "GPUs per embed actor (default: 1 where the cluster has GPUs, else 0)"
    )
    download_actors: int | None = option(
        None, "most fetch+decode actors (default: grows with the cluster's CPUs, nodes that join included)"
    )

    def __post_init__(self) -> None:
        for name in ("batch_size", "download_batch_size", "min_embed_actors"):
            if getattr(self, name) < 1:
                raise ConfigError(f"--{name.replace('_', '-')} must be at least 1, got {getattr(self, name)}")
        for name in ("embed_actors", "download_actors"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ConfigError(f"--{name.replace('_', '-')} must be at least 1, got {value}")
        if self.embed_actors is not None and self.embed_actors < self.min_embed_actors:
            raise ConfigError(
                f"--embed-actors ({self.embed_actors}) must be at least --min-embed-actors ({self.min_embed_actors})"
            )
        if self.num_gpus_per_actor is not None and self.num_gpus_per_actor < 0:
            raise ConfigError(f"--num-gpus-per-actor must be zero or more, got {self.num_gpus_per_actor}")


DEFAULT_MODEL = "openai/clip-vit-base-patch32"


@dataclasses.dataclass(frozen=True)
class IngestConfig(DownloadOptions, DecodeOptions, StageOptions):
    """Ingest job (jobs/embed.py): from a URL table to a Parquet dataset of CLIP embeddings, on Ray Data.

    The stages' options are inherited from :class:`DownloadOptions`, :class:`DecodeOptions` and :class:`StageOptions`,
    where they are declared once; :meth:`download_options`, :meth:`decode_options` and :meth:`stage_options` hand each
    its own part.
    """

    input: str = option("", "URL table (.csv/.tsv/.parquet/.jsonl/.txt), a folder of images, or a URI (s3://...)")
    output: str = option("", "folder or URI for the embeddings (part-*.parquet + _manifest.json, _stats.json)")
    url_column: str | None = option(None, "column with image URLs (default: url, image_url, media_url or img_url)")
    id_column: str | None = option(None, "column with unique, non-empty row ids (default: a stable hash of the URL)")
    model: str = option(DEFAULT_MODEL, "CLIP model: hub id or local folder of any transformers CLIPModel")
    rows_per_shard: int = option(1000, "rows per output file, at least (the last files may hold fewer)")
    limit: int | None = option(None, "only ingest the first N rows (a quick trial run)")
    overwrite: bool = option(False, "delete existing output in --output and start over")
    shared_output: bool = option(False, "assert that a plain local --output path is shared storage on every node")
    ray_address: str | None = option(None, "Ray cluster to attach to (default: the one this job runs in, else local)")
    progress: bool = option(True, "show a progress bar (rows done) on the console")

    def __post_init__(self) -> None:
        DownloadOptions.__post_init__(self)
        DecodeOptions.__post_init__(self)
        StageOptions.__post_init__(self)
        if not self.input:
            raise ConfigError("--input is required (a URL table, a folder of images or a URI)")
        if not self.output:
            raise ConfigError("--output is required (a folder or URI for the shards)")
        if self.rows_per_shard < 1:
            raise ConfigError(f"--rows-per-shard must be at least 1, got {self.rows_per_shard}")
        if self.limit is not None and self.limit < 1:
            raise ConfigError(f"--limit must be at least 1, got {self.limit}")

    def download_options(self) -> DownloadOptions:
        """The download stage's part, as a plain DownloadOptions (small to ship to actors)."""
        return stage_options(self, DownloadOptions)

    def decode_options(self) -> DecodeOptions:
        """The decode stage's part, as a plain DecodeOptions."""
        return stage_options(self, DecodeOptions)

    def stage_options(self) -> StageOptions:
        """Batch sizes and pool bounds, as a plain StageOptions."""
        return stage_options(self, StageOptions)
