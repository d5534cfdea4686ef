"""The ready message of `eventfn dev`: where everything listens and what runs."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from eventfn.mesh._dev import Mesh
    from eventfn.mesh._topology import Topology


def ready_text(mesh: Mesh, info: dict[str, Any]) -> str:
    """The lines `eventfn dev` prints once it is ready (`info` is what dev.json records)."""
    lines = [
        f"eventfn dev: {len(mesh.topology.services)} functions, "
        f"{len(mesh.topology.triggers)} triggers from {mesh.options.manifests}",
        *(f"  broker {name}: {url}" for name, url in info["brokers"].items()),
        f"  embedded S3: {info['s3']['endpoint_url']} (bucket {info['s3']['bucket']})",
        f"  webhook capture (Teams, Slack): {', '.join(info['webhooks'].values()) or 'off'}",
        f'  function addresses (all in dev.json "services"): {_direct(mesh, info)}',
        f"  PingSources: {_pings(mesh.topology)}",
        f"  state: {mesh.state_dir} (function logs in {mesh.state_dir / 'logs'})",
        f"  running: {', '.join(sorted(info['running'])) or 'none'}; others start on their "
        f"first event and stop after {mesh.options.idle_seconds:g} s idle",
        "  try: eventfn upload <file> --prefix documents/   ·   eventfn events --follow",
    ]
    return "\n".join(lines)


def _pings(topology: Topology) -> str:
    sources = [f"{p.name} ({p.schedule.expression} {p.timezone})" for p in topology.ping_sources]
    return ", ".join(sources) or "none"


def _direct(mesh: Mesh, info: dict[str, Any]) -> str:
    """The addresses of the Services no Trigger delivers to: those are called directly."""
    subscribed = {trigger.subscriber_service for trigger in mesh.topology.triggers}
    urls: dict[str, str] = info["services"]
    direct = [f"{name} {url}" for name, url in urls.items() if name not in subscribed]
    return ", ".join(direct) or "none without a Trigger"
