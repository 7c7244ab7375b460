"""Settings: one pydantic-settings class, read from ``EPOQUE_*`` environment variables."""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="EPOQUE_", extra="ignore")

    data_dir: Path = Field(Path("./data"), description="All embedded state lives under it.")
    database_url: str | None = Field(None, description="Default: SQLite file in the data dir.")
    broker_url: str | None = Field(
        None, description="Default: kombu's SQLAlchemy transport on a SQLite file in the data dir."
    )
    host: str = "127.0.0.1"
    port: int = 8000
    api_token: SecretStr | None = Field(
        None, description="Required for writes and the stream when set; needed to serve "
        "beyond loopback."
    )
    device: str = Field("auto", description="Device the worker trains on: auto, cpu, cuda, cuda:N.")
    torch_threads: int | None = Field(
        None, ge=1, description="torch threads per run; default: 1 for small models (fastest "
        "here), every usable core for big steps (worker/timing.py)."
    )
    broker_poll_seconds: float = Field(
        0.1, gt=0, description="Polling interval of the embedded SQLite broker."
    )
    heartbeat_seconds: float = Field(5.0, gt=0, description="How often a worker says it is alive.")
    heartbeat_timeout_seconds: float = Field(
        60.0, gt=0, description="A running run silent for this long is recovered (re-queued)."
    )
    checkpoint_seconds: float = Field(
        2.0, ge=0, description="How often a running run saves a resumable checkpoint (at least "
        "20 times its own write time, so checkpoints never slow training much)."
    )
    fork_snapshot_mb: float = Field(
        4.0, ge=0, description="Bytes (MB) of snapshots a run keeps for forks: every epoch when "
        "they fit, else a logarithmic and evenly spaced set; forks replay from the nearest one "
        "(0: none, forks replay from z0)."
    )
    fork_snapshot_share: float = Field(
        0.05, gt=0, description="Share of a run's time its fork snapshots may take: after one "
        "that cost t seconds, the next waits t / share (1 or more: every epoch of the budget)."
    )
    max_attempts: int = Field(
        3, ge=1, description="Attempts of a run before it is marked failed (worker losses)."
    )
    max_epochs: int = Field(10_000, ge=1, description="Most epochs one run may ask for.")
    max_width: int = Field(4096, ge=1, description="Widest layer (units or channels).")
    max_depth: int = Field(32, ge=1, description="Most hidden layers or conv blocks.")
    max_members: int = Field(64, ge=1, description="Most ensemble members.")
    packs: Literal["timed", "always", "never"] = Field(
        "timed", description="timed: a worker trains a pack stacked only if throwaway steps "
        "show it faster than its runs one by one (worker/timing.py); always: stacked anyway; "
        "never: one by one."
    )
    data_cache_mb: int = Field(
        256, ge=0, description="Datasets a worker keeps on its device across runs, in MiB "
        "(worker/engine/data_cache.py); 0 keeps none."
    )
    max_n_samples: int = Field(200_000, ge=10, description="Most examples a synthetic set has.")
    max_grid_points: int = Field(256, ge=1, description="Most runs one study may create.")
    max_body_bytes: int = Field(
        2 * 2**20, ge=1024, description="Largest JSON request body (uploads have their own limit)."
    )
    max_queued_runs: int = Field(
        2000, ge=1, description="Runs waiting at once; past it, creations answer 429."
    )
    max_upload_bytes: int = Field(50 * 2**20, ge=1, description="Largest dataset zip accepted.")
    max_upload_files: int = Field(20_000, ge=1, description="Most files in one dataset zip.")
    max_upload_uncompressed_bytes: int = Field(
        500 * 2**20, ge=1, description="Most bytes a dataset zip may decompress to."
    )
    max_image_pixels: int = Field(4096 * 4096, ge=1, description="Largest image (w×h) in a zip.")
    max_datasets: int = Field(
        50, ge=1, description="Most uploaded datasets kept at once; past it, uploads answer 409 "
        "until one is deleted.")
    max_dataset_bytes: int = Field(
        2 * 2**30, ge=1, description="Most bytes all uploaded datasets' processed images may "
        "take together (3×32×32 bytes per image); past it, uploads answer 413.")
    dataset_processes: int = Field(
        1, ge=1, description="Processes that decode uploaded images (outside the API "
        "process); uploads beyond them wait their turn.")
    stream_poll_seconds: float = Field(
        0.1, gt=0, description="How often a stream looks for new points in the database."
    )

    # --- Robustness: memory and load bounds (issue 14) ---
    max_run_memory_mb: int = Field(
        default_factory=lambda: _half_of_memory_mb(), ge=1,
        description="Most memory one run's spec may need (estimated at creation: weights, "
        "optimiser state, one minibatch's activations, the dataset). Default: half of this "
        "machine's memory.")
    max_batch_size: int = Field(65_536, ge=1, description="Largest optim.batch_size.")
    preview_concurrency: int = Field(
        2, ge=1, description="Previews computed at once (in threads, off the event loop); "
        "more wait their turn.")
    heavy_concurrency: int = Field(
        2, ge=1, description="Model downloads, metrics CSV pieces and predictions computed at "
        "once (in threads, off the event loop); more wait their turn a piece at a time.")
    predictor_cache: int = Field(
        4, ge=0, description="Trained models kept loaded for /predict (least recently used "
        "go first).")
    max_metric_points: int = Field(
        200_000, ge=1, description="Most points /metrics answers without `points` "
        "(downsampling); beyond it, 422 asking for `points` or a later `after`.")

    # Browsers and DNS rebinding (backend/sameorigin.py): the Host header must name the lab.
    allowed_hosts: str | None = Field(
        None, description="Comma-separated host names the Host header may name ('*' any, "
        "'*.example.org' a domain's hosts); default: the loopback names and the configured "
        "host (and, on a wildcard address, this machine's names)."
    )

    @property
    def allowed_host_names(self) -> frozenset[str]:
        if self.allowed_hosts is not None and self.allowed_hosts.strip():
            return frozenset(h.strip().lower().strip("[]") for h in self.allowed_hosts.split(",")
                             if h.strip())
        names = {"127.0.0.1", "localhost", "::1", self.host.lower().strip("[]")}
        if self.host in ("0.0.0.0", "::"):  # served on every address: this machine's names
            import socket

            names |= {socket.gethostname().lower(), socket.getfqdn().lower()}
        return frozenset(names)

    @field_validator("api_token", mode="before")
    @classmethod
    def _blank_is_none(cls, v: object) -> object:
        # An empty EPOQUE_API_TOKEN= (as compose passes an unset variable) means no token,
        # never "the empty token".
        return None if isinstance(v, str) and not v.strip() else v

    @property
    def db_url(self) -> str:
        return self.database_url or f"sqlite:///{(self.data_dir / 'epoque.sqlite').resolve()}"

    @property
    def broker(self) -> str:
        return self.broker_url or f"sqla+sqlite:///{(self.data_dir / 'broker.sqlite').resolve()}"

    @property
    def embedded_broker(self) -> bool:
        return self.broker.startswith("sqla+")

    def ensure_dirs(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)


def _half_of_memory_mb() -> int:
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # not a POSIX system: assume 8 GB
        total = 8 * 2**30
    return max(total // 2 // 2**20, 1)


@lru_cache
def get_settings() -> Settings:
    settings = Settings()
    settings.ensure_dirs()
    return settings
