"""`hdsctl events tail`: what Event Grid delivered to a subscription's Storage queue, decoded."""

from __future__ import annotations

import json

from hdsctl.arguments import bounded_count
from hdsctl.errors import EXIT_OK


def add_arguments(commands) -> None:
    events = commands.add_parser("events", help="workspace events: read what was delivered")
    sub = events.add_subparsers(dest="events_command", metavar="ACTION", required=True)
    tail = sub.add_parser("tail", help="the events waiting in a subscription's Storage queue, one line each")
    tail.add_argument("--stack", required=True, help="environment, e.g. dev")
    tail.add_argument("--subscription", help="the subscription (needed when the stack has several)")
    tail.add_argument("--consume", action="store_true",
                      help="receive and delete each event once printed (default: peek, leaving the queue "
                           "as is)")
    tail.add_argument("--dead-letters", action="store_true",
                      help="read the subscription's dead-letter container instead of its queue")
    tail.add_argument("--max", type=bounded_count(1, 100_000, "events"), default=32,
                      help="events to read at most (default 32; a peek shows at most 32)")
    tail.add_argument("--queue-url", help="the queue service's account URL, overriding the stack's "
                                          "(the local stack: queueUrl from `hdsctl emulator --events "
                                          "--url-file`)")
    tail.add_argument("--blob-url",
                      help="with --dead-letters: the blob service's account URL, overriding the stack's")
    tail.add_argument("--json", action="store_true", help="one JSON document per event, one per line")
    tail.set_defaults(handler=run_tail)


def run_tail(args) -> int:
    import sys

    from hdsctl.environment.load import load_environment, stack_file_path
    from hdsctl.events.tail import (
        EventsUsageError,
        StorageTarget,
        account_url,
        read_dead_letters,
        read_guarded,
        read_queue,
    )

    env = load_environment(stack_file_path(args.stack, args.stacks_dir))
    events = env.spec.events
    subscriptions = events.subscriptions if events else []
    if not subscriptions:
        raise EventsUsageError(f"stack {env.name} declares no event subscriptions "
                               "(hdsctl:events.subscriptions)")
    names = [s.name for s in subscriptions]
    if args.subscription is None and len(names) > 1:
        raise EventsUsageError(f"stack {env.name} has several subscriptions: pick one with --subscription "
                               f"({', '.join(names)})")
    subscription = next((s for s in subscriptions if s.name == (args.subscription or names[0])), None)
    if subscription is None:
        raise EventsUsageError(
            f"stack {env.name} has no subscription {args.subscription!r} ({', '.join(names)})")

    def emit(event) -> None:
        print(json.dumps(event.to_json()) if args.json else event.line(), flush=True)

    if args.dead_letters:
        if not subscription.dead_letter:
            raise EventsUsageError(f"subscription {subscription.name} does not dead-letter (deadLetter: false)")
        container = events.dead_letter
        account = env.events_account_name(container.account_id)
        url = account_url(account, "blob", args.blob_url, env.spec.trusted_hosts)
        target = StorageTarget(url, container.container)
        where = f"dead-letter container {container.container} at {target.account_url}"
        read = read_guarded(lambda: read_dead_letters(target, subscription.name, limit=args.max, emit=emit),
                            where, "Storage Blob Data Reader")
    else:
        destination = next(d for d in events.destinations if d.name == subscription.destination)
        if destination.storage_queue is None:
            raise EventsUsageError(
                f"subscription {subscription.name} delivers to {destination.name}, a "
                f"{'Service Bus queue' if destination.service_bus_queue_id else 'Event Hub'}: tail reads "
                "Storage "
                "queues; read it with that service's own tools")
        queue = destination.storage_queue
        account = env.events_account_name(queue.account_id)
        url = account_url(account, "queue", args.queue_url, env.spec.trusted_hosts)
        target = StorageTarget(url, queue.queue)
        where = f"queue {queue.queue} at {target.account_url}"
        needs = "Storage Queue Data Message Processor" if args.consume else "Storage Queue Data Reader"
        read = read_guarded(lambda: read_queue(target, consume=args.consume, limit=args.max, emit=emit), where,
                            needs)
    how = "received and deleted" if args.consume and not args.dead_letters else "read"
    print(f"{read} event(s) {how} from {where} (subscription {subscription.name})", file=sys.stderr)
    return EXIT_OK
