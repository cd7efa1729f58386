"""The same FastAPI app as a Ray Serve deployment: N replicas (or autoscaling), each with its own models
and micro-batcher, behind Ray Serve's HTTP proxy.

Each replica builds the app from the ``ServerConfig`` (JSON) at start, so models load in the replica,
never in the driver, and every route, the auth, the limits and the metrics behave as under uvicorn
(``/metrics`` is the answering replica's). Ray Serve's controller replaces a replica whose process
dies, and its proxy sends new requests to the live ones meanwhile. Needs ``pip install 'rerankit[ray]'``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from ..errors import BackendUnavailableError, InvalidInputError
from ..validation import positive_int
from .config import ServerConfig

DEPLOYMENT = "rerankit"


@dataclass(frozen=True)
class Scaling:
    """A fixed number of replicas, or autoscaling between ``minimum`` and ``maximum`` on ongoing requests."""

    minimum: int
    maximum: int

    @classmethod
    def parse(cls, replicas: int | None, autoscale: str | None) -> Scaling:
        if replicas is not None and autoscale is not None:
            raise InvalidInputError("give --replicas or --autoscale, not both")
        if autoscale is not None:
            low, _, high = autoscale.partition(":")
            if not (low.strip().isdigit() and high.strip().isdigit()):
                raise InvalidInputError(f"--autoscale takes MIN:MAX (e.g. 1:4), got {autoscale!r}")
            minimum, maximum = int(low), int(high)
            if minimum < 0 or maximum < max(1, minimum):
                raise InvalidInputError(f"--autoscale needs 0 <= MIN <= MAX and MAX >= 1, got {autoscale!r}")
            return cls(minimum, maximum)
        count = 1 if replicas is None else replicas
        return cls(positive_int(count, "--replicas"), count)

    @property
    def fixed(self) -> bool:
        return self.minimum == self.maximum


class RerankitReplica:
    """One replica: the rerankit app for a config, built when the replica starts."""

    def __init__(self, config_json: str) -> None:
        self.config_json = config_json

    def __serve_build_asgi_app__(self):
        from .app import create_app

        return create_app(ServerConfig.from_json(self.config_json))


def build_application(config: ServerConfig, scaling: Scaling, cpus_per_replica: float = 1.0, threads: int = 1):
    """The Ray Serve application (deployment bound to the config), not yet running."""
    try:
        from ray import serve
    except ImportError as exc:
        raise BackendUnavailableError("--ray needs Ray Serve: pip install 'rerankit[ray]'") from exc
    options: dict = {"name": DEPLOYMENT, "max_ongoing_requests": 16, "health_check_period_s": 2,
                     "ray_actor_options": {"num_cpus": cpus_per_replica,
                                           "runtime_env": {"env_vars": {"RERANKIT_THREADS": str(threads)}}}}
    if scaling.fixed:
        options["num_replicas"] = scaling.minimum
    else:
        options["autoscaling_config"] = {"min_replicas": scaling.minimum, "max_replicas": scaling.maximum,
                                         "target_ongoing_requests": 2}
    deployment = serve.deployment(**options)(serve.ingress()(RerankitReplica))
    return deployment.bind(config.to_json())


def serve_on_ray(config: ServerConfig, *, host: str, port: int, scaling: Scaling, address: str | None = None,
                 log_level: str = "info") -> None:
    """Start (or join) a Ray cluster, deploy the app, and serve until SIGINT/SIGTERM."""
    import signal
    import threading

    try:
        import ray
        from ray import serve
    except ImportError as exc:
        raise BackendUnavailableError("--ray needs Ray Serve: pip install 'rerankit[ray]'") from exc
    cores = os.cpu_count() or 1
    replicas = scaling.maximum
    threads = max(1, cores // replicas)
    if address:
        ray.init(address=address, log_to_driver=log_level == "debug", configure_logging=False)
    else:
        ray.init(num_cpus=max(cores, replicas), include_dashboard=False, log_to_driver=log_level == "debug",
                 configure_logging=False)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    try:
        serve.start(http_options={"host": host, "port": port}, detached=False)
        serve.run(build_application(config, scaling, cpus_per_replica=1.0, threads=threads), name=DEPLOYMENT,
                  route_prefix="/", blocking=False)
        print(f"rerankit on Ray Serve at http://{host}:{port} ({scaling.minimum}"
              f"{'' if scaling.fixed else f' to {scaling.maximum}'} replicas, {threads} thread(s) each)", flush=True)
        stop.wait()
    finally:
        serve.shutdown()
        ray.shutdown()
