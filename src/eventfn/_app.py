"""The function object: handlers registered by CloudEvent type, frozen when serving starts."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from eventfn._errors import RegistrationError, UnknownEventType
from eventfn._event import Event
from eventfn._routes import Route, RouteFunc, check_route

if TYPE_CHECKING:
    from eventfn._context import Context

HandlerFunc = Callable[[Event, "Context"], Any]
KeyFunc = Callable[[Event], str]
Hook = Callable[[], None]
ReadyCheck = Callable[[], bool]
F = TypeVar("F", bound=Callable[..., Any])
R = TypeVar("R", bound=RouteFunc)

ANY_TYPE = "*"
"""The event type of a catch-all registration (`App.on_any`): it takes every type no exact
registration takes, e.g. a dead-letter sink receiving whatever its Triggers failed to deliver."""


@dataclass(frozen=True, slots=True)
class Handler:
    """One registration: which events it takes, what it may reply, how it is deduplicated."""

    event_type: str
    func: HandlerFunc
    subject_prefix: str | None = None
    reply_type: str | None = None
    idempotent: bool = True
    key: KeyFunc | None = None
    validate: bool = True  # False: incoming data is not checked against (or decoded by) schemas

    @property
    def name(self) -> str:
        """`type` or `type` + subject prefix, as shown in errors and logs."""
        event_type = "any type" if self.event_type == ANY_TYPE else self.event_type
        if self.subject_prefix:
            return f"{event_type} (subject {self.subject_prefix}*)"
        return event_type

    def idempotency_key(self, event: Event) -> str:
        """The deduplication key: the declared key function, else (source, id)."""
        if self.key is not None:
            return self.key(event)
        return f"{event.source}\x1f{event.id}"


class App:
    """A function: a named set of handlers plus lifecycle hooks.

    >>> app = App("echo")
    >>> @app.on("eventfn.echo.requested.v1", reply_type="eventfn.echo.replied.v1")
    ... def echo(event, ctx): ...
    """

    def __init__(self, name: str, *, source: str | None = None) -> None:
        if not name:
            raise RegistrationError("a function needs a name")
        self.name = name
        self.source = source
        self._handlers: list[Handler] = []
        self._by_type: dict[str, list[Handler]] = {}
        self._start_hooks: list[Hook] = []
        self._stop_hooks: list[Hook] = []
        self._ready_checks: list[ReadyCheck] = []
        self._routes: list[Route] = []
        self._frozen = False

    # -- registration ------------------------------------------------------------------------

    def on(
        self,
        event_type: str,
        *,
        subject_prefix: str | None = None,
        reply_type: str | None = None,
        idempotent: bool = True,
        key: KeyFunc | None = None,
        validate: bool = True,
    ) -> Callable[[F], F]:
        """Register the decorated function for events of `event_type`.

        `validate=False` hands the data over as received (parsed JSON, else bytes) instead of
        checking it against the schema registry: for handlers that must accept invalid events.
        """

        def register(func: F) -> F:
            handler = Handler(
                event_type, func, subject_prefix, reply_type, idempotent, key, validate
            )
            self.add_handler(handler)
            return func

        return register

    def on_any(
        self,
        *,
        subject_prefix: str | None = None,
        idempotent: bool = True,
        key: KeyFunc | None = None,
        validate: bool = True,
    ) -> Callable[[F], F]:
        """Register the decorated function for every type no `on(type)` registration takes.

        A catch-all handler cannot declare a reply type: it would receive its own replies.
        Its `ctx.emit` still refuses the type of the event being handled.
        """
        return self.on(
            ANY_TYPE,
            subject_prefix=subject_prefix,
            idempotent=idempotent,
            key=key,
            validate=validate,
        )

    def add_handler(self, handler: Handler) -> None:
        """Register a handler; refuses duplicates, reply loops and late registration."""
        self._check_open()
        if not handler.event_type:
            raise RegistrationError("a handler needs an event type")
        if handler.event_type == ANY_TYPE and handler.reply_type is not None:
            raise RegistrationError(
                "a catch-all handler cannot declare a reply type: it would receive its own "
                "replies again, a loop"
            )
        if handler.reply_type == handler.event_type:
            raise RegistrationError(
                f"handler for {handler.event_type!r} replies with the same type: a broker "
                "re-evaluates replies against every Trigger, so this would loop"
            )
        for existing in self._by_type.get(handler.event_type, []):
            if existing.subject_prefix == handler.subject_prefix:
                raise RegistrationError(f"a handler for {handler.name} is already registered")
        self._handlers.append(handler)
        bucket = self._by_type.setdefault(handler.event_type, [])
        bucket.append(handler)
        bucket.sort(key=lambda h: len(h.subject_prefix or ""), reverse=True)

    def route(self, path: str, *, methods: tuple[str, ...] = ("POST",)) -> Callable[[R], R]:
        """Serve the decorated `(HttpRequest, RouteContext) -> Response` function on `path`."""

        def register(func: R) -> R:
            self.add_route(Route(path, tuple(method.upper() for method in methods), func))
            return func

        return register

    def add_route(self, route: Route) -> None:
        """Register an HTTP route (e.g. a webhook) beside the CloudEvents endpoint."""
        self._check_open()
        check_route(route, self._routes)
        self._routes.append(route)

    def on_start(self, hook: Hook) -> Hook:
        """Run `hook` once when the function starts serving."""
        self._check_open()
        self._start_hooks.append(hook)
        return hook

    def on_stop(self, hook: Hook) -> Hook:
        """Run `hook` once when the function stops (SIGTERM, scale-down)."""
        self._check_open()
        self._stop_hooks.append(hook)
        return hook

    def ready_check(self, check: ReadyCheck) -> ReadyCheck:
        """Add a readiness condition reported on /health/readiness."""
        self._check_open()
        self._ready_checks.append(check)
        return check

    def _check_open(self) -> None:
        if self._frozen:
            raise RegistrationError(
                f"function {self.name!r} is already serving; register handlers before start"
            )

    # -- serving -----------------------------------------------------------------------------

    def freeze(self) -> None:
        """Close registration (called when the WSGI app is created)."""
        if not self._handlers and not self._routes:
            raise RegistrationError(f"function {self.name!r} registers no handler and no route")
        self._frozen = True

    @property
    def frozen(self) -> bool:
        """True once serving has started."""
        return self._frozen

    @property
    def handlers(self) -> tuple[Handler, ...]:
        """All registrations, in registration order."""
        return tuple(self._handlers)

    @property
    def routes(self) -> tuple[Route, ...]:
        """The HTTP routes, in registration order."""
        return tuple(self._routes)

    @property
    def event_types(self) -> frozenset[str]:
        """The event types registered by name (a catch-all registration is not one)."""
        return frozenset(self._by_type) - {ANY_TYPE}

    @property
    def accepts_any_type(self) -> bool:
        """True when a catch-all handler is registered (`on_any`)."""
        return ANY_TYPE in self._by_type

    def match(self, event: Event) -> Handler:
        """The handler for `event`: by exact type first, then the catch-all registrations;
        within each, the longest matching subject prefix wins."""
        for event_type in (event.type, ANY_TYPE):
            for handler in self._by_type.get(event_type, ()):
                prefix = handler.subject_prefix
                if prefix is None or (event.subject or "").startswith(prefix):
                    return handler
        known = ", ".join(h.name for h in self._handlers)
        raise UnknownEventType(
            f"function {self.name!r} has no handler for type {event.type!r}"
            + (f" and subject {event.subject!r}" if event.subject else "")
            + f"; it handles: {known}",
            field="type",
        )

    def run_start_hooks(self) -> None:
        """Call the start hooks in registration order."""
        for hook in self._start_hooks:
            hook()

    def run_stop_hooks(self) -> None:
        """Call the stop hooks in reverse registration order."""
        for hook in reversed(self._stop_hooks):
            hook()

    def is_ready(self) -> bool:
        """True when every readiness check passes."""
        return all(check() for check in self._ready_checks)
