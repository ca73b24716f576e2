"""The decision function: fold one event into a customer's state and say what must happen now.

`step(state, event, policy)` is pure in the sense that matters for replays: the same state, event
and policy always give the same decisions, with no clock, randomness or I/O. For speed it mutates
the state it is given and returns that same object; callers that need the previous state keep its
`to_record()` first.

What it emits:
- a Decision for every customer or AI-agent message of a conversation that is not escalated and
  not taken over by a human (action continue, offer_transfer or escalate);
- a Decision for a contact opened/reopened that hits repeat contact, and for a sentiment event
  that fires, and nothing for those events otherwise;
- nothing for account and outcome events, which only fold into state;
- with every escalate Decision, exactly one HandoffPackage (revision 0, handoff_id = decision_id).
  Later events on an escalated conversation give no Decision; a customer turn or a new hit gives a
  package revision (up to `handoff.max_revisions`).

Event time: the state keeps a watermark per event type (the highest occurred_at seen on that
input), because the worker reads the input topics side by side and one of them can run ahead. An
event older than its type's watermark minus `lateness_seconds` is folded into what it can update
(turns, contacts, account) but does not fire window triggers (repeat contact, sentiment). Events
within the bound are folded in event-time order and judged on windows that end at their own time.
A closed conversation's turns are kept until the message watermark passes the close plus the
lateness, so its last messages count even when the close was read first. Whenever the customer's
watermark moves, what no window can need any more is expired (stream/core/expiry.py), and an
event more than the judging horizon after its conversation's close begins that conversation
afresh, which is what makes the expiry exact.

A redelivered event re-emits its decision with the same decision_id and changes nothing: an
escalation or an offer whole (with the latest package), a continue rebuilt from the event. A
redelivered message that had no decision (a human owned the conversation, or it was escalated)
gives none.
"""

from __future__ import annotations

from bisect import bisect_right, insort
from collections.abc import Callable
from dataclasses import replace
from functools import lru_cache
from typing import Final, NamedTuple, ParamSpec

from stream.core import handoff
from stream.core.bounds import clip, clip_all, clip_key, clip_optional
from stream.core.combine import CONTINUE, Combined, combine, priority_of
from stream.core.decision import (
    AccountSnapshot,
    AttemptedAction,
    Decision,
    HandoffPackage,
    TriggerHit,
    decision_id_for,
)
from stream.core.events import (
    AccountEvent,
    ContactEvent,
    Event,
    MessageEvent,
    OutcomeEvent,
    SentimentEvent,
)
from stream.core.expiry import expire, past_horizon
from stream.core.markers import TextSignal, analyze_turn
from stream.core.policy import Policy
from stream.core.state import ContactRecord, ConversationState, CustomerState, Escalation, Turn
from stream.core.triggers import (
    TriggerError,
    TriggerResult,
    boundary,
    confidence,
    explicit_request,
    failed,
    repeat_contact,
    sentiment,
)
from stream.core.turn_model import (
    CONTEXT_TURNS,
    PREVIOUS_MAX_CHARS,
    REPEAT_LOOKBACK,
    TurnContext,
    TurnModel,
    load_shipped,
)
from stream.core.vocabulary import (
    CONFIDENCE,
    EXPLICIT_REQUEST,
    POLICY_BOUNDARY,
    PRIORITY_RANK,
    REPEAT_CONTACT,
    SENTIMENT,
    Priority,
)

_MAX_INTENTS = 20
# The learned turn signal, read once here, at start-up; `step` takes another one as an argument.
SHIPPED_MODEL: TurnModel = load_shipped()
# Work outside the triggers whose failure fails safe too (DESIGN section 8), named in the
# `trigger_error.<name>` hit, the log line and the counts as a trigger's would be.
TEXT_ANALYSIS: Final = "text_analysis"
HANDOFF: Final = "handoff"
# What a customer turn carries when its text analysis failed: no marker, no score.
_NO_SIGNAL: Final[TextSignal] = TextSignal(
    markers=(), score=0.0, negative=False, human_request=False
)


@lru_cache(maxsize=4096)
def _turn_signal(model: TurnModel, text: str, signal: TextSignal, context: TurnContext) -> float:
    # Like the markers: a backtest folds each turn through every policy it compares, and the score
    # depends on the model, the text, its markers and the turns before it only, so the second
    # policy reuses the first's.
    return round(model.score(text, signal, context), 4)


def _context(conv: ConversationState, at: int) -> TurnContext:
    """What the turn model may know of the conversation before a customer turn at `at`: the AI
    agent's last turn, the customer's last few turns, and how many customer turns came before
    (the count survives the state's cut of old turns; turns folded late, with a later time, are
    not "before"); and the signal kept on the customer's last turn, when it is still what that
    turn's text and the turns now before it give (`_carried`)."""
    previous_ai = ""
    previous: list[str] = []
    last: Turn | None = None
    later = 0
    for known in conv.turns:
        if known.at > at:
            later += known.role == "customer"
        elif known.role == "customer":
            previous.append(known.text)
            last = known
        elif known.role == "ai_agent":
            previous_ai = known.text
    count = len(previous)
    return TurnContext(
        previous_ai,
        tuple(previous[-CONTEXT_TURNS:]),
        max(count, conv.customer_turns - later),
        _carried(last, count - 1, count + later == conv.customer_turns),
    )


def _carried(last: Turn | None, before: int, whole: bool) -> tuple[tuple[str, ...], float] | None:
    """The marker kinds and lexicon score of the customer's last turn, as it was analysed when it
    was folded, if its texts would give them again now: then no earlier turn analyses again.

    That turn was compared with the (up to) REPEAT_LOOKBACK customer turns before it then. A late
    turn folded before it since clears its `lexicon` (`_add_turn`); the only other change is a cut
    of the oldest turns, which leaves those REPEAT_LOOKBACK intact while `before` (customer turns
    still before it) is at least that many, and did not happen while the conversation holds every
    customer turn it counted (`whole`)."""
    if last is None or last.lexicon is None:
        return None
    if before < REPEAT_LOOKBACK and not whole:
        return None
    return tuple(kind for kind, _ in last.markers), last.lexicon


class StepResult(NamedTuple):
    state: CustomerState
    decisions: list[Decision]
    handoffs: list[HandoffPackage]
    # Triggers that could not evaluate on this event. Each one is also a `trigger_error` hit on
    # the decision (or package revision) it made fail safe; the caller logs and counts them.
    errors: tuple[TriggerError, ...] = ()
    # A message whose id was folded before with other content (role or text): absorbed as a
    # redelivery of the first, and named here so the caller logs and counts it.
    conflict: str | None = None


_P = ParamSpec("_P")


def _run(
    name: str, check: Callable[_P, TriggerResult], *a: _P.args, **kw: _P.kwargs
) -> TriggerResult:
    """Call one trigger; its exception becomes a typed error that `step` acts on.

    This is the only handler around the triggers, so no error can be swallowed inside one: the
    result carries it, and `_gather` turns it into a fail-safe hit.
    """
    try:
        return check(*a, **kw)
    except Exception as exc:  # turned into a typed error and acted on, never dropped
        return failed(name, exc)


def _gather(
    results: list[TriggerResult], message_id: str | None
) -> tuple[list[TriggerHit], tuple[TriggerError, ...]]:
    """All hits, plus one `trigger_error` hit (hold and escalate) per trigger that failed."""
    hits: list[TriggerHit] = []
    errors: list[TriggerError] = []
    for result in results:
        hits.extend(result.hits)
        error = result.error
        if error is not None and error.fail_safe:
            errors.append(error)
            hits.append(error.to_hit(message_id))
    return hits, tuple(errors)


def _applied(results: list[TriggerResult]) -> dict[str, float]:
    """The thresholds the triggers report they compared against: the decision's one source."""
    out: dict[str, float] = {}
    for result in results:
        out.update(result.thresholds)
    return out


def step(
    state: CustomerState | None, event: Event, policy: Policy, model: TurnModel | None = None
) -> StepResult:
    """Fold `event` into `state` (created when None) and return the decisions it leads to.

    `model` scores customer turns for the sentiment trigger; None is the shipped one.
    """
    if state is None:
        state = CustomerState.new(event.customer_id)
    at = event.occurred_at
    kind = event.type
    mark = state.marks.get(kind, -1)
    too_late = at < mark - policy.compiled.lateness_ms
    if at > mark:
        state.marks[kind] = at
        if kind == "message" and state.closed:
            _drop_closed(state, policy)
    if at > state.watermark:
        state.watermark = at
        expire(state, policy)
    if isinstance(event, MessageEvent):
        return _on_message(state, event, policy, too_late, model or SHIPPED_MODEL)
    if isinstance(event, SentimentEvent):
        return _on_sentiment(state, event, policy, too_late)
    if isinstance(event, ContactEvent):
        return _on_contact(state, event, policy, too_late)
    if isinstance(event, AccountEvent):
        _on_account(state, event, policy)
    elif isinstance(event, OutcomeEvent):
        _close(state, event.conversation_id, at, policy)
    return StepResult(state, [], [])


# --- events ------------------------------------------------------------------------------------


def _on_message(
    state: CustomerState, ev: MessageEvent, policy: Policy, too_late: bool, model: TurnModel
) -> StepResult:
    found = _resume(state, ev.conversation_id, ev.event_id, ev.occurred_at, policy)
    if isinstance(found, StepResult):
        return found
    conv = found
    for known in conv.turns:
        if known.message_id == ev.message_id:
            result = _redelivered(state, conv, ev, known, policy)
            if known.role != ev.role or known.text != clip(ev.text, policy.state.max_text_chars):
                # Same message id, other content: a producer bug, or a forged message. The first
                # version decided and stays; the second is not folded, and is reported.
                why = f"message {ev.message_id!r} ({ev.event_id!r}) differs from the one folded"
                return result._replace(conflict=why)
            return result
    if ev.category:
        conv.category = clip(ev.category, policy.state.max_label_chars)
    conv.channel = ev.channel
    at = ev.occurred_at
    if at > conv.last_at:
        conv.last_at = at
    role = ev.role
    limits = policy.state
    text = clip(ev.text, limits.max_text_chars)

    # Text analysis that failed: the turn is kept without markers or score, and the decision on
    # it fails safe like one whose trigger failed.
    analysis: TriggerResult | None = None
    if role == "customer":
        context = _context(conv, at)
        # Compared with this many earlier customer turns to spot a repeated question.
        earlier = context.previous_customer[-REPEAT_LOOKBACK:]
        lexicon: float | None = None
        try:
            signal = analyze_turn(text, earlier)
            score: float | None = _turn_signal(model, text, signal, context)
            lexicon = _kept_lexicon(signal, text, earlier)
        except Exception as exc:  # acted on below: hold and escalate, never a silent continue
            signal, score, analysis = _NO_SIGNAL, None, failed(TEXT_ANALYSIS, exc)
        turn = Turn(
            ev.message_id,
            role,
            text,
            at,
            tuple((m.kind, m.text) for m in signal.markers),
            signal.negative,
            conv.pending_scores.pop(ev.message_id, None),
            signal=score,
            lexicon=lexicon,
        )
        conv.customer_turns += 1
    else:
        turn = Turn(ev.message_id, role, text, at)
        if role == "ai_agent":
            analysis = _note_ai_turn(conv, ev, text, policy)
        elif role == "human_agent":
            conv.human = True
    _add_turn(conv, turn, limits.max_turns_per_conversation)

    if role != "customer" and role != "ai_agent":
        return StepResult(state, [], [])
    if conv.human:
        return StepResult(state, [], [])

    account = state.account
    results: list[TriggerResult] = [] if analysis is None else [analysis]
    message_id = ev.message_id
    if role == "customer":
        results.append(
            _run(
                EXPLICIT_REQUEST,
                explicit_request.check,
                message_id,
                text,
                turn.markers,
                policy,
            )
        )
        if not too_late:
            turns = _turns_until(conv, turn)
            results.append(_run(SENTIMENT, sentiment.check, turns, policy, conv.channel))
    else:
        results.append(_run(CONFIDENCE, confidence.check, ev, policy))
    results.append(_run(POLICY_BOUNDARY, boundary.check, ev, conv, account, policy))
    hits, errors = _gather(results, message_id)
    thresholds = policy.compiled.customer_thresholds if role == "customer" else _applied(results)

    if conv.escalation is not None:
        package, failure = _revise_safely(state, conv, hits, policy, always=role == "customer")
        return StepResult(state, [], package, errors + failure)

    combined = combine(hits, policy, account, offered=conv.offer is not None)
    hold = combined.action != "continue" and ev.proposed_action is not None
    decision = _decision(state, conv, ev, combined, policy, thresholds, hold)
    turn.decided = True
    return _record(state, conv, ev.event_id, decision, combined, policy, errors)


def _kept_lexicon(signal: TextSignal, text: str, earlier: tuple[str, ...]) -> float | None:
    """The lexicon score to keep on the turn for the next one's context: the turn model reads
    these texts cut to PREVIOUS_MAX_CHARS, so a score from longer ones is not the one it would
    compute, and is not kept (a policy may keep texts longer than that)."""
    if len(text) > PREVIOUS_MAX_CHARS:
        return None
    for other in earlier:
        if len(other) > PREVIOUS_MAX_CHARS:
            return None
    return signal.score


def _redelivered(
    state: CustomerState, conv: ConversationState, ev: MessageEvent, turn: Turn, policy: Policy
) -> StepResult:
    """A message read again after a crash, when the state from the changelog already holds it.

    The state was saved before the crash, the decision may not have been sent: it is sent again,
    with the same id. Escalations and offers are re-sent whole by `_replay`; any other decided
    turn was a continue, rebuilt here. The state does not change.
    """
    if not turn.decided:
        return StepResult(state, [], [])
    errors: tuple[TriggerError, ...] = ()
    if ev.role == "customer":
        thresholds = policy.compiled.customer_thresholds
    else:
        # The same checks give the same limits; their hits were a continue the first time. The
        # decision already made is sent again unchanged (same id, same content), and a check that
        # fails now is still reported.
        results = [
            _run(CONFIDENCE, confidence.check, ev, policy),
            _run(POLICY_BOUNDARY, boundary.check, ev, conv, state.account, policy),
        ]
        thresholds = _applied(results)
        errors = _gather(results, ev.message_id)[1]
    decision = _decision(state, conv, ev, CONTINUE, policy, thresholds, False)
    return StepResult(state, [decision], [], errors)


def _resume(
    state: CustomerState, conv_id: str, event_id: str, at: int, policy: Policy
) -> ConversationState | StepResult:
    """The conversation an event belongs to (opened if new), or what to return at once: nothing
    for a straggler after the close, the same decision again for a redelivered event."""
    if state.closed:
        _begin_afresh(state, conv_id, at, policy)
        if _after_close(state, conv_id, at, policy):
            return StepResult(state, [], [])
    conv = state.conversations.get(conv_id)
    if conv is None:
        return _open(state, conv_id, at, policy)
    replayed = _replay(state, conv, event_id)
    return replayed if replayed is not None else conv


def _on_sentiment(
    state: CustomerState, ev: SentimentEvent, policy: Policy, too_late: bool
) -> StepResult:
    found = _resume(state, ev.conversation_id, ev.event_id, ev.occurred_at, policy)
    if isinstance(found, StepResult):
        return found
    conv = found
    if ev.occurred_at > conv.last_at:
        conv.last_at = ev.occurred_at
    turn = next((t for t in conv.turns if t.message_id == ev.message_id), None)
    if turn is None:
        # The score came before its message: keep it (bounded) until the message arrives.
        pending = conv.pending_scores
        if len(pending) >= policy.state.max_turns_per_conversation:
            pending.pop(next(iter(pending)))
        pending[ev.message_id] = ev.score
        return StepResult(state, [], [])
    turn.sentiment = ev.score
    if turn.role != "customer" or conv.human or too_late:
        return StepResult(state, [], [])
    turns = _turns_until(conv, turn)
    hits, errors = _gather(
        [_run(SENTIMENT, sentiment.check, turns, policy, conv.channel)], ev.message_id
    )
    return _on_hits(state, conv, ev, hits, policy, policy.compiled.customer_thresholds, errors)


def _on_contact(
    state: CustomerState, ev: ContactEvent, policy: Policy, too_late: bool
) -> StepResult:
    conv_id = ev.conversation_id
    if ev.action == "closed":
        _close(state, conv_id, ev.occurred_at, policy)
        return StepResult(state, [], [])
    if state.closed:
        _begin_afresh(state, conv_id, ev.occurred_at, policy)
        if ev.action == "reopened" and conv_id in state.closed:
            del state.closed[conv_id]
    limits = policy.state
    record = ContactRecord(
        ev.contact_id,
        conv_id,
        clip_key(ev.issue_key, limits.max_key_chars),
        ev.occurred_at,
        clip_optional(ev.category, limits.max_label_chars),
        ev.channel,
        ev.action,
    )
    contacts = state.contacts
    for known in contacts:
        if (
            known.contact_id == record.contact_id
            and known.action == record.action
            and known.at == record.at
        ):
            conv = state.conversations.get(conv_id)
            replayed = _replay(state, conv, ev.event_id) if conv is not None else None
            return replayed if replayed is not None else StepResult(state, [], [])
    insort(contacts, record, key=_contact_time)
    _prune_contacts(state, policy)

    conv = state.conversations.get(conv_id)
    if conv is None:
        if conv_id in state.closed:
            return StepResult(state, [], [])
        conv = _open(state, conv_id, ev.occurred_at, policy)
    if ev.category:
        conv.category = record.category
    conv.channel = ev.channel
    if ev.occurred_at > conv.last_at:
        conv.last_at = ev.occurred_at
    if too_late or record not in contacts:
        return StepResult(state, [], [])

    # A contact that arrives out of order can make a later contact on the same issue the Nth:
    # the customer's newest contact on the issue is the one judged, on its own window.
    current = record
    for known in contacts:
        if known.issue_key == record.issue_key and known.at > current.at:
            current = known
    result = _run(REPEAT_CONTACT, repeat_contact.check, contacts, current, policy)
    hits, errors = _gather([result], None)
    if not hits:
        return StepResult(state, [], [])
    target = state.conversations.get(current.conversation_id)
    if target is None or target.human:
        # Nobody to hold the action for: the error is still reported, never dropped.
        return StepResult(state, [], [], errors)
    return _on_hits(state, target, ev, hits, policy, policy.compiled.contact_thresholds, errors)


def _on_hits(
    state: CustomerState,
    conv: ConversationState,
    ev: SentimentEvent | ContactEvent,
    hits: list[TriggerHit],
    policy: Policy,
    thresholds: dict[str, float],
    errors: tuple[TriggerError, ...] = (),
) -> StepResult:
    """Hits from an event that is not a turn: a decision only when they call for more than
    continue, or a package revision when the conversation is already escalated."""
    if not hits:
        return StepResult(state, [], [], errors)
    if conv.escalation is not None:
        package, failure = _revise_safely(state, conv, hits, policy, always=False)
        return StepResult(state, [], package, errors + failure)
    combined = combine(hits, policy, state.account, offered=conv.offer is not None)
    if combined.action == "continue":
        return StepResult(state, [], [], errors)
    decision = _decision(state, conv, ev, combined, policy, thresholds, False)
    return _record(state, conv, ev.event_id, decision, combined, policy, errors)


def _on_account(state: CustomerState, ev: AccountEvent, policy: Policy) -> None:
    # The topic is a compacted snapshot: an older snapshot arriving late never replaces a newer one.
    if ev.occurred_at < state.account_at:
        return
    state.account_at = ev.occurred_at
    limits = policy.state
    label = limits.max_label_chars
    state.account = AccountSnapshot(
        tier=clip(ev.tier, label),
        plan=clip_optional(ev.plan, label),
        enterprise_contract=ev.enterprise_contract,
        contract_id=clip_optional(ev.contract_id, limits.max_key_chars),
        primary_email=clip_optional(ev.primary_email, limits.max_email_chars),
        balance=ev.balance,
        currency=clip(ev.currency, label),
        flags=_bounded_flags(tuple(ev.flags), policy),
        open_cases=ev.open_cases,
        known=True,
    )


def _bounded_flags(flags: tuple[str, ...], policy: Policy) -> tuple[str, ...]:
    """At most `state.max_flags` flags, each bounded; the flags the policy reads are kept first."""
    limits = policy.state
    if len(flags) > limits.max_flags:
        compiled = policy.compiled
        wanted = compiled.relevant_flags | compiled.raise_flags
        keep = [f for f in flags if f in wanted][: limits.max_flags - 1]
        room = limits.max_flags - 1 - len(keep)
        others = [f for f in flags if f not in wanted][:room]
        chosen = set(keep) | set(others)
        cut = tuple(f for f in flags if f in chosen)
        return (*clip_all(cut, limits.max_label_chars, len(cut)), f"…{len(flags) - len(cut)} more")
    return clip_all(flags, limits.max_label_chars, limits.max_flags)


# --- folding helpers ---------------------------------------------------------------------------


def _turn_time(turn: Turn) -> int:
    return turn.at


def _contact_time(contact: ContactRecord) -> int:
    return contact.at


def _add_turn(conv: ConversationState, turn: Turn, cap: int) -> None:
    turns = conv.turns
    if not turns or turns[-1].at <= turn.at:
        turns.append(turn)
    else:
        at = bisect_right(turns, turn.at, key=_turn_time)
        turns.insert(at, turn)
        if turn.role == "customer":
            # The customer turns after it were analysed without it before them: what they keep
            # for the next turn's context is no longer what their texts give (`_carried`).
            for later in turns[at + 1 :]:
                later.lexicon = None
    if len(turns) > cap:
        del turns[: len(turns) - cap]


def _turns_until(conv: ConversationState, turn: Turn) -> list[Turn]:
    """Turns up to and including `turn` in event time: windows end at the event."""
    out: list[Turn] = []
    for t in conv.turns:
        if t.at <= turn.at:
            out.append(t)
        if t is turn:
            break
    return out


def _note_ai_turn(
    conv: ConversationState, ev: MessageEvent, text: str, policy: Policy
) -> TriggerResult | None:
    """Fold an AI turn; the failed text analysis (the clarifying-question pattern), if any."""
    conv.ai_turns += 1
    label = policy.state.max_label_chars
    intent = clip_optional(ev.intent, label)
    analysis: TriggerResult | None = None
    if intent and intent not in conv.intents and len(conv.intents) < _MAX_INTENTS:
        conv.intents.append(intent)
    try:
        clarifying = intent in ("clarify", "clarification") or _asks_to_clarify(text)
    except Exception as exc:  # acted on by the caller: hold and escalate
        clarifying, analysis = False, failed(TEXT_ANALYSIS, exc)
    if clarifying:
        conv.clarifications += 1
    action = ev.proposed_action
    if action is not None:
        attempts = conv.attempts
        attempts.append(
            AttemptedAction(
                message_id=ev.message_id,
                intent=intent,
                confidence=ev.intent_confidence,
                type=clip(action.type, label),
                consequence_class=clip(action.consequence_class, label),
                amount=action.amount,
                currency=clip_optional(action.currency, label),
                target=clip_optional(action.target, policy.state.max_key_chars),
                attempted=ev.action_attempted,
                failed=ev.action_failed,
            )
        )
        cap = policy.state.max_attempts_per_conversation
        if len(attempts) > cap:
            del attempts[: len(attempts) - cap]
    return analysis


def _asks_to_clarify(text: str) -> bool:
    return handoff.CLARIFYING.search(text) is not None


def _open(state: CustomerState, conv_id: str, at: int, policy: Policy) -> ConversationState:
    conversations = state.conversations
    if conversations:
        idle_before = state.marks.get("message", -1) - policy.compiled.idle_ms
        for stale in [c for c in conversations.values() if c.last_at < idle_before]:
            _forget(state, stale, policy)
        if len(conversations) >= policy.state.max_open_conversations:
            oldest = min(conversations.values(), key=lambda c: (c.last_at, c.conversation_id))
            _forget(state, oldest, policy)
    conv = ConversationState.opened(conv_id, at)
    conversations[conv_id] = conv
    return conv


def _forget(state: CustomerState, conv: ConversationState, policy: Policy) -> None:
    """Drop an idle or evicted conversation; one already escalated must never escalate again.

    An escalated one that is closed keeps its close time, so that it ends at the judging horizon
    whether it was forgotten here or expired (stream/core/expiry.py); an open one is closed to
    every later event."""
    conv_id = conv.conversation_id
    del state.conversations[conv_id]
    if conv.escalation is not None and state.closed.get(conv_id, _CLOSED_TO_ALL) < 0:
        _remember_closed(state, conv_id, _CLOSED_TO_ALL, policy)


def _close(state: CustomerState, conv_id: str, at: int, policy: Policy) -> None:
    """Mark closed at `at`; the turns stay until the message watermark passes `at` plus the
    lateness. A close after the judging horizon of an earlier close is a new conversation's."""
    _begin_afresh(state, conv_id, at, policy)
    _remember_closed(state, conv_id, at, policy)
    if at < state.marks.get("message", -1) - policy.compiled.lateness_ms:
        state.conversations.pop(conv_id, None)


# Close time recorded for an escalated conversation evicted from the state: no later event of it
# may open it again, whatever its time, or it could escalate twice.
_CLOSED_TO_ALL = -1


def _begin_afresh(state: CustomerState, conv_id: str, at: int, policy: Policy) -> None:
    """Forget a closed conversation whose close is more than the judging horizon before `at`: its
    id now names a new conversation (a reopen after the horizon starts over). This is the rule
    that lets idle expiry drop such a close without changing a decision (stream/core/expiry.py)."""
    closed_at = state.closed.get(conv_id)
    if closed_at is not None and past_horizon(closed_at, at, policy):
        del state.closed[conv_id]
        state.conversations.pop(conv_id, None)


def _after_close(state: CustomerState, conv_id: str, at: int, policy: Policy) -> bool:
    """An event of a closed conversation counts only if it happened before the close and the close
    is still within the lateness bound of the message stream (the outcome or the close may be
    read before the conversation's messages); anything else is a straggler and decides nothing."""
    closed_at = state.closed.get(conv_id)
    if closed_at is None:
        return False
    if at > closed_at:
        return True
    if conv_id in state.conversations:
        return False
    return closed_at < state.marks.get("message", -1) - policy.compiled.lateness_ms


def _drop_closed(state: CustomerState, policy: Policy) -> None:
    horizon = state.marks.get("message", -1) - policy.compiled.lateness_ms
    conversations = state.conversations
    for conv_id, closed_at in state.closed.items():
        if closed_at < horizon and conv_id in conversations:
            del conversations[conv_id]


def _remember_closed(state: CustomerState, conv_id: str, at: int, policy: Policy) -> None:
    closed = state.closed
    if conv_id in closed:
        closed[conv_id] = min(closed[conv_id], at)
        return
    closed[conv_id] = at
    cap = policy.state.max_closed_remembered
    while len(closed) > cap:
        oldest = next(iter(closed))
        del closed[oldest]
        state.conversations.pop(oldest, None)


def _prune_contacts(state: CustomerState, policy: Policy) -> None:
    compiled = policy.compiled
    horizon = state.marks.get("contact", -1) - compiled.repeat_window_ms - compiled.lateness_ms
    contacts = state.contacts
    drop = 0
    while drop < len(contacts) and contacts[drop].at < horizon:
        drop += 1
    excess = len(contacts) - drop - policy.state.max_contacts
    if excess > 0:
        drop += excess
    if drop:
        del contacts[:drop]


# --- deciding ----------------------------------------------------------------------------------


def _decision(
    state: CustomerState,
    conv: ConversationState,
    ev: MessageEvent | SentimentEvent | ContactEvent,
    combined: Combined,
    policy: Policy,
    thresholds: dict[str, float],
    hold: bool,
) -> Decision:
    version = policy.version
    return Decision(
        decision_id=decision_id_for(state.customer_id, conv.conversation_id, ev.event_id, version),
        customer_id=state.customer_id,
        conversation_id=conv.conversation_id,
        event_id=ev.event_id,
        event_type=ev.type,
        occurred_at=ev.occurred_at,
        action=combined.action,
        priority=combined.priority,
        hold_action=hold,
        triggers=combined.hits,
        category=conv.category,
        customer_message=combined.customer_message,
        policy_version=version,
        thresholds=thresholds,
    )


def _record(
    state: CustomerState,
    conv: ConversationState,
    event_id: str,
    decision: Decision,
    combined: Combined,
    policy: Policy,
    errors: tuple[TriggerError, ...] = (),
) -> StepResult:
    """Remember what a non-continue decision did, and build the package of an escalation."""
    if decision.action == "offer_transfer":
        conv.offer = decision
        return StepResult(state, [decision], [], errors)
    if decision.action != "escalate":
        return StepResult(state, [decision], [], errors)
    customer_message = decision.customer_message or policy.messages.escalate
    try:
        package = handoff.build(
            customer_id=state.customer_id,
            conv=conv,
            account=state.account,
            policy=policy,
            handoff_id=decision.decision_id,
            decision_id=decision.decision_id,
            revision=0,
            escalated_at=decision.occurred_at,
            policy_version=decision.policy_version,
            reasons=combined.hits,
            prior_contacts=handoff.prior_contacts_for(
                state,
                conv.conversation_id,
                decision.occurred_at,
                policy.compiled.repeat_window_ms,
            ),
            priority=decision.priority,
            customer_message=customer_message,
        )
    except Exception as exc:  # the escalation stands; the decision names the failure
        error = TriggerError(HANDOFF, "internal", f"{type(exc).__name__}: {exc}")
        decision = replace(
            decision,
            triggers=(error.to_hit(None), *decision.triggers),
            priority=_higher(decision.priority, "high"),
        )
        package = handoff.fallback(
            decision, conv, policy, customer_message, f"{error.code}: {error.detail}"
        )
        errors = (*errors, error)
    conv.escalation = Escalation(event_id, decision, package)
    return StepResult(state, [decision], [package], errors)


def _higher(priority: Priority, other: Priority) -> Priority:
    return other if _rank(other) > _rank(priority) else priority


def _revise_safely(
    state: CustomerState,
    conv: ConversationState,
    hits: list[TriggerHit],
    policy: Policy,
    *,
    always: bool,
) -> tuple[list[HandoffPackage], tuple[TriggerError, ...]]:
    """`_revise`, with its failure reported instead of raised: the conversation is escalated
    already (the action held, a person owns it), so the last package stands and the error is
    logged and counted by the caller."""
    try:
        package = _revise(state, conv, hits, policy, always=always)
    except Exception as exc:  # reported through StepResult.errors, never swallowed
        return [], (TriggerError(HANDOFF, "internal", f"{type(exc).__name__}: {exc}"),)
    return ([package] if package is not None else []), ()


def _revise(
    state: CustomerState,
    conv: ConversationState,
    hits: list[TriggerHit],
    policy: Policy,
    *,
    always: bool,
) -> HandoffPackage | None:
    """A new revision of an escalated conversation's package, or None when nothing is worth one."""
    escalation = conv.escalation
    assert escalation is not None
    previous = escalation.package
    if previous.revision >= policy.handoff.max_revisions:
        return None
    reasons, added = handoff.merge_reasons(previous.reasons, hits)
    if not (always or added):
        return None
    if not added and previous.attempts.ai_turns == conv.ai_turns:
        package = handoff.with_new_turns(previous, conv, policy)
        escalation.package = package
        return package
    priority = previous.ticket.priority
    if added:
        recomputed = priority_of(reasons, policy, previous.account)
        if _rank(recomputed) > _rank(priority):
            priority = recomputed
    package = handoff.build(
        customer_id=state.customer_id,
        conv=conv,
        account=previous.account,
        policy=policy,
        handoff_id=previous.handoff_id,
        decision_id=previous.decision_id,
        revision=previous.revision + 1,
        escalated_at=previous.escalated_at,
        policy_version=previous.policy_version,
        reasons=reasons,
        prior_contacts=previous.prior_contacts,
        priority=priority,
        customer_message=previous.customer_message,
    )
    escalation.package = package
    return package


def _rank(priority: str) -> int:
    return PRIORITY_RANK[priority]


def _replay(state: CustomerState, conv: ConversationState, event_id: str) -> StepResult | None:
    """The same decision again for a redelivered event that escalated or offered a transfer."""
    escalation = conv.escalation
    if escalation is not None and escalation.event_id == event_id:
        return StepResult(state, [escalation.decision], [escalation.package])
    offer = conv.offer
    if offer is not None and offer.event_id == event_id:
        return StepResult(state, [offer], [])
    return None
