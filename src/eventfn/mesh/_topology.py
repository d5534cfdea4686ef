"""The topology `eventfn dev` runs: Knative Services, Brokers and Triggers parsed from manifests.

Generic Knative YAML is read from every `*.yaml`/`*.yml` file under a directory (multi-document
files included); kinds other than `serving.knative.dev/v1` Service, `eventing.knative.dev/v1`
Broker/Trigger and `sources.knative.dev/v1` PingSource (`_ping`) are ignored. Problems a
cluster's admission webhook would reject (unknown subscriber, bad filter, bad duration) raise
`ConfigurationError` at load time.

Delivery follows Knative's rules for an MTChannelBasedBroker:
- a Trigger's `spec.delivery`, when present, replaces the Broker's `spec.delivery` as a whole;
  with neither, the cluster default broker delivery applies (`retry: 10, backoffPolicy:
  exponential, backoffDelay: PT0.2S`, knative/eventing config/core/configmaps/default-broker.yaml);
- inside a delivery spec a missing `retry` means no retries and a missing `backoffDelay` means
  no delay between retries, as in pkg/kncloudevents/retries.go (`RetryConfigFromDeliverySpec`);
  a missing `backoffPolicy` is `exponential`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from eventfn._errors import ConfigurationError
from eventfn.mesh._filters import validate_attributes, validate_filters

if TYPE_CHECKING:
    from eventfn.mesh._ping import PingSourceSpec

SERVING_API = "serving.knative.dev/v1"
EVENTING_API = "eventing.knative.dev/v1"
SOURCES_API = "sources.knative.dev/v1"
BROKER_CLASS_ANNOTATION = "eventing.knative.dev/broker.class"
DEFAULT_BROKER_CLASS = "MTChannelBasedBroker"
MIN_SCALE_ANNOTATIONS = ("autoscaling.knative.dev/min-scale", "autoscaling.knative.dev/minScale")
MAX_SCALE_ANNOTATIONS = ("autoscaling.knative.dev/max-scale", "autoscaling.knative.dev/maxScale")
FUNCTION_ENV = "EVENTFN_FUNCTION"
DEFAULT_NAMESPACE = "default"
DEFAULT_TIMEOUT_SECONDS = 300  # Knative Serving's default revision timeoutSeconds

_DURATION = re.compile(
    r"^P(?!$)(?:(?P<years>\d+(?:[.,]\d+)?)Y)?(?:(?P<months>\d+(?:[.,]\d+)?)M)?"
    r"(?:(?P<weeks>\d+(?:[.,]\d+)?)W)?(?:(?P<days>\d+(?:[.,]\d+)?)D)?"
    r"(?:T(?=\d)(?:(?P<hours>\d+(?:[.,]\d+)?)H)?(?:(?P<minutes>\d+(?:[.,]\d+)?)M)?"
    r"(?:(?P<seconds>\d+(?:[.,]\d+)?)S)?)?$"
)
_UNIT_SECONDS = {
    "years": 365 * 86400.0,
    "months": 30 * 86400.0,
    "weeks": 7 * 86400.0,
    "days": 86400.0,
    "hours": 3600.0,
    "minutes": 60.0,
    "seconds": 1.0,
}


@dataclass(frozen=True)
class ServiceSpec:
    """A Knative Service: what the supervisor needs to run one function locally."""

    name: str
    namespace: str
    env: dict[str, str]
    secret_env: dict[str, tuple[str, str]]
    min_scale: int
    max_scale: int
    container_concurrency: int
    timeout_seconds: int
    function: str


@dataclass(frozen=True)
class DeliverySpec:
    """Knative's DeliverySpec, durations in seconds. Defaults are the cluster's broker default."""

    retry: int = 10
    backoff_policy: str = "exponential"
    backoff_delay: float = 0.2
    timeout: float | None = None
    dead_letter_service: str | None = None
    dead_letter_uri: str | None = None
    retry_after_max: float | None = None


@dataclass(frozen=True)
class TriggerSpec:
    """A Trigger with its effective delivery (its own, else its Broker's, else the default)."""

    name: str
    namespace: str
    broker: str
    filters: list[dict[str, Any]]
    attributes: dict[str, str]
    subscriber_service: str | None
    subscriber_uri: str | None
    delivery: DeliverySpec


@dataclass(frozen=True)
class BrokerSpec:
    """A Broker: its class annotation and its own delivery spec, if any."""

    name: str
    namespace: str
    broker_class: str
    delivery: DeliverySpec | None


@dataclass(frozen=True)
class Topology:
    """Everything `eventfn dev` wires together."""

    services: dict[str, ServiceSpec]
    triggers: list[TriggerSpec]
    brokers: list[BrokerSpec]
    ping_sources: list[PingSourceSpec] = field(default_factory=list)

    def broker(self, namespace: str, name: str) -> BrokerSpec | None:
        """The Broker `namespace/name`, or None."""
        for broker in self.brokers:
            if broker.namespace == namespace and broker.name == name:
                return broker
        return None

    def triggers_of(self, namespace: str, broker: str) -> list[TriggerSpec]:
        """The Triggers subscribed to Broker `namespace/broker`, in manifest order."""
        return [t for t in self.triggers if t.namespace == namespace and t.broker == broker]


def parse_duration(iso: str) -> float:
    """An ISO-8601 duration (`PT0.5S`, `PT1M`, `P1DT2H`) in seconds; Y = 365 d, M = 30 d."""
    match = _DURATION.match(iso.strip()) if isinstance(iso, str) else None
    if match is None:
        raise ConfigurationError(f"{iso!r} is not an ISO-8601 duration such as PT0.5S or PT1M")
    total = 0.0
    for unit, value in match.groupdict().items():
        if value is not None:
            total += float(value.replace(",", ".")) * _UNIT_SECONDS[unit]
    return total


def load_topology(manifests_dir: Path) -> Topology:
    """Parse every Knative Service, Broker and Trigger under `manifests_dir`."""
    if not manifests_dir.is_dir():
        raise ConfigurationError(f"manifests directory {manifests_dir} does not exist")
    documents = _documents(manifests_dir)
    services: dict[str, ServiceSpec] = {}
    brokers: list[BrokerSpec] = []
    raw_triggers: list[dict[str, Any]] = []
    raw_pings: list[dict[str, Any]] = []
    for doc in documents:
        api, kind = doc.get("apiVersion"), doc.get("kind")
        if api == SERVING_API and kind == "Service":
            service = _service(doc)
            if service.name in services:
                raise ConfigurationError(f"Knative Service {service.name} is defined twice")
            services[service.name] = service
        elif api == EVENTING_API and kind == "Broker":
            brokers.append(_broker(doc))
        elif api == EVENTING_API and kind == "Trigger":
            raw_triggers.append(doc)
        elif api == SOURCES_API and kind == "PingSource":
            raw_pings.append(doc)
    triggers = [_trigger(doc, services, brokers) for doc in raw_triggers]
    topology = Topology(services=services, triggers=triggers, brokers=brokers)
    topology.ping_sources.extend(_ping_source(doc, topology) for doc in raw_pings)
    return topology


def _ping_source(doc: dict[str, Any], topology: Topology) -> PingSourceSpec:
    from eventfn.mesh._ping import parse_ping_source  # builds on this module's helpers

    source = parse_ping_source(doc)
    if topology.broker(source.broker_namespace, source.broker) is None:
        raise ConfigurationError(
            f"PingSource {source.namespace}/{source.name}: its sink, Broker "
            f"{source.broker_namespace}/{source.broker}, is not defined"
        )
    return source


def _documents(root: Path) -> list[dict[str, Any]]:
    paths = sorted(p for p in root.rglob("*") if p.suffix in (".yaml", ".yml") and p.is_file())
    documents: list[dict[str, Any]] = []
    for path in paths:
        try:
            loaded = list(yaml.safe_load_all(path.read_text(encoding="utf-8")))
        except yaml.YAMLError as error:
            raise ConfigurationError(f"{path}: not valid YAML ({error})") from None
        for doc in loaded:
            if isinstance(doc, dict) and doc.get("kind") == "List":
                documents.extend(i for i in doc.get("items") or [] if isinstance(i, dict))
            elif isinstance(doc, dict):
                documents.append(doc)
    return documents


def read_metadata(doc: dict[str, Any]) -> tuple[str, str, dict[str, Any]]:
    """(name, namespace, metadata) of a manifest; ConfigurationError without a name."""
    meta = as_mapping(doc.get("metadata"), "metadata")
    name = meta.get("name")
    if not isinstance(name, str) or not name:
        raise ConfigurationError(f"a {doc.get('kind')} has no metadata.name")
    namespace = meta.get("namespace") or DEFAULT_NAMESPACE
    return name, str(namespace), meta


def as_mapping(value: Any, what: str) -> dict[str, Any]:
    """`value` when it is a mapping, {} for None; ConfigurationError otherwise."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ConfigurationError(f"{what} must be a mapping")
    return value


def _int(value: Any, what: str, default: int) -> int:
    if value is None or value == "":
        return default
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ConfigurationError(f"{what} must be an integer, got {value!r}") from None


def _service(doc: dict[str, Any]) -> ServiceSpec:
    name, namespace, _ = read_metadata(doc)
    where = f"Service {namespace}/{name}"
    template = as_mapping(as_mapping(doc.get("spec"), f"{where} spec").get("template"), where)
    annotations = as_mapping(as_mapping(template.get("metadata"), where).get("annotations"), where)
    pod = as_mapping(template.get("spec"), f"{where} spec.template.spec")
    containers = pod.get("containers") or [{}]
    env, secret_env = _env(as_mapping(containers[0], f"{where} container").get("env") or [], where)
    min_scale = next((annotations[a] for a in MIN_SCALE_ANNOTATIONS if a in annotations), None)
    max_scale = next((annotations[a] for a in MAX_SCALE_ANNOTATIONS if a in annotations), None)
    return ServiceSpec(
        name=name,
        namespace=namespace,
        env=env,
        secret_env=secret_env,
        min_scale=_int(min_scale, f"{where} min-scale", 0),
        max_scale=_int(max_scale, f"{where} max-scale", 0),
        container_concurrency=_int(pod.get("containerConcurrency"), f"{where} concurrency", 0),
        timeout_seconds=_int(pod.get("timeoutSeconds"), f"{where} timeoutSeconds", 300),
        function=env.get(FUNCTION_ENV) or name,
    )


def _env(entries: list[Any], where: str) -> tuple[dict[str, str], dict[str, tuple[str, str]]]:
    env: dict[str, str] = {}
    secret_env: dict[str, tuple[str, str]] = {}
    for raw in entries:
        entry = as_mapping(raw, f"{where} env entry")
        name = entry.get("name")
        if not isinstance(name, str):
            raise ConfigurationError(f"{where}: an env entry has no name")
        if "value" in entry:
            env[name] = "" if entry["value"] is None else str(entry["value"])
            continue
        ref = as_mapping(as_mapping(entry.get("valueFrom"), where).get("secretKeyRef"), where)
        if ref.get("name") and ref.get("key"):
            secret_env[name] = (str(ref["name"]), str(ref["key"]))
    return env, secret_env


def _broker(doc: dict[str, Any]) -> BrokerSpec:
    name, namespace, meta = read_metadata(doc)
    annotations = as_mapping(meta.get("annotations"), f"Broker {name} annotations")
    spec = as_mapping(doc.get("spec"), f"Broker {name} spec")
    delivery = spec.get("delivery")
    return BrokerSpec(
        name=name,
        namespace=namespace,
        broker_class=str(annotations.get(BROKER_CLASS_ANNOTATION) or DEFAULT_BROKER_CLASS),
        delivery=None if delivery is None else _delivery(delivery, f"Broker {name}", None),
    )


def _trigger(
    doc: dict[str, Any], services: dict[str, ServiceSpec], brokers: list[BrokerSpec]
) -> TriggerSpec:
    name, namespace, _ = read_metadata(doc)
    where = f"Trigger {namespace}/{name}"
    spec = as_mapping(doc.get("spec"), f"{where} spec")
    broker_name = spec.get("broker")
    broker = next((b for b in brokers if b.name == broker_name and b.namespace == namespace), None)
    if broker is None:
        raise ConfigurationError(f"{where}: Broker {namespace}/{broker_name} is not defined")
    filters = spec.get("filters") or []
    if not isinstance(filters, list):
        raise ConfigurationError(f"{where}: spec.filters must be a list")
    validate_filters(filters, where)
    attributes = as_mapping(as_mapping(spec.get("filter"), where).get("attributes"), where)
    attributes = {str(k): "" if v is None else str(v) for k, v in attributes.items()}
    validate_attributes(attributes, where)
    service, uri = _destination(spec.get("subscriber"), services, f"{where} subscriber")
    if service is None and uri is None:
        raise ConfigurationError(f"{where}: spec.subscriber needs a ref or a uri")
    if "delivery" in spec and spec["delivery"] is not None:
        delivery = _delivery(spec["delivery"], where, services)
    elif broker.delivery is not None:
        delivery = broker.delivery
    else:
        delivery = DeliverySpec()
    _check_dead_letter(delivery, services, where)
    return TriggerSpec(
        name=name,
        namespace=namespace,
        broker=broker.name,
        filters=filters,
        attributes=attributes,
        subscriber_service=service,
        subscriber_uri=uri,
        delivery=delivery,
    )


def _destination(
    value: Any, services: dict[str, ServiceSpec] | None, where: str
) -> tuple[str | None, str | None]:
    dest = as_mapping(value, where)
    uri = dest.get("uri")
    if uri is not None and not isinstance(uri, str):
        raise ConfigurationError(f"{where}: uri must be a string")
    ref = dest.get("ref")
    if ref is None:
        if uri is not None and not uri.startswith(("http://", "https://")):
            raise ConfigurationError(f"{where}: uri {uri!r} must be absolute without a ref")
        return None, uri or None
    ref = as_mapping(ref, f"{where} ref")
    kind, api, name = ref.get("kind"), ref.get("apiVersion"), ref.get("name")
    if kind != "Service" or api not in (SERVING_API, "v1"):
        raise ConfigurationError(
            f"{where}: ref {api}/{kind} {name} is not supported by eventfn dev; "
            f"refer to a {SERVING_API} Service or use an absolute uri"
        )
    if services is not None and name not in services:
        known = ", ".join(sorted(services)) or "none"
        raise ConfigurationError(f"{where}: unknown Service {name!r} (known: {known})")
    return str(name), uri or None


def _delivery(value: Any, where: str, services: dict[str, ServiceSpec] | None) -> DeliverySpec:
    spec = as_mapping(value, f"{where} delivery")
    policy = spec.get("backoffPolicy") or "exponential"
    if policy not in ("linear", "exponential"):
        raise ConfigurationError(f"{where}: backoffPolicy must be linear or exponential")
    retry = _int(spec.get("retry"), f"{where} delivery.retry", 0)
    if retry < 0:
        raise ConfigurationError(f"{where}: delivery.retry must not be negative")
    timeout = _duration(spec.get("timeout"), f"{where} delivery.timeout")
    if timeout is not None and timeout <= 0:
        raise ConfigurationError(f"{where}: delivery.timeout must be greater than zero")
    dls_service, dls_uri = (None, None)
    if spec.get("deadLetterSink") is not None:
        dls_service, dls_uri = _destination(
            spec["deadLetterSink"], services, f"{where} deadLetterSink"
        )
    return DeliverySpec(
        retry=retry,
        backoff_policy=str(policy),
        backoff_delay=_duration(spec.get("backoffDelay"), f"{where} backoffDelay") or 0.0,
        timeout=timeout,
        dead_letter_service=dls_service,
        dead_letter_uri=dls_uri,
        retry_after_max=_duration(spec.get("retryAfterMax"), f"{where} retryAfterMax"),
    )


def _duration(value: Any, what: str) -> float | None:
    if value is None:
        return None
    try:
        return parse_duration(str(value))
    except ConfigurationError as error:
        raise ConfigurationError(f"{what}: {error}") from None


def _check_dead_letter(
    delivery: DeliverySpec, services: dict[str, ServiceSpec], where: str
) -> None:
    name = delivery.dead_letter_service
    if name is not None and name not in services:
        raise ConfigurationError(f"{where}: dead-letter sink Service {name!r} is not defined")
