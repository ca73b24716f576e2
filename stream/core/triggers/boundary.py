"""Policy boundary: actions beyond the AI agent's authority, and operator rules, escalate now."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, NamedTuple

from stream.core.conditions import FIELDS, evaluate, matched_facts
from stream.core.decision import AccountSnapshot, Evidence, TriggerHit
from stream.core.events import MessageEvent, ProposedAction
from stream.core.policy import Policy
from stream.core.state import ConversationState
from stream.core.triggers import NO_HITS, TriggerError, TriggerResult
from stream.core.vocabulary import POLICY_BOUNDARY as TRIGGER

_ACCOUNT_FIELDS: dict[str, str] = {
    "account.tier": "tier",
    "account.plan": "plan",
    "account.flags": "flags",
    "account.enterprise_contract": "enterprise_contract",
    "account.primary_email": "primary_email",
    "account.balance": "balance",
    "account.currency": "currency",
    "account.open_cases": "open_cases",
    "account.known": "known",
}
_ACTION_FIELDS: dict[str, str] = {
    "action.type": "type",
    "action.consequence_class": "consequence_class",
    "action.amount": "amount",
    "action.currency": "currency",
    "action.target": "target",
}
_CONVERSATION_FIELDS: dict[str, str] = {
    "conversation.category": "category",
    "conversation.channel": "channel",
    "conversation.customer_turns": "customer_turns",
    "conversation.ai_turns": "ai_turns",
}
_MESSAGE_FIELDS: dict[str, str] = {
    "message.role": "role",
    "message.intent": "intent",
    "message.intent_confidence": "intent_confidence",
    "message.text": "text",
}


class Facts(Mapping[str, Any]):
    """The field-path view the condition language reads, resolved only for the paths asked for.

    Rules usually test two or three paths; building the whole view for every turn would cost more
    than evaluating the rules.
    """

    __slots__ = ("message", "conv", "account")

    def __init__(
        self,
        message: MessageEvent | None,
        conv: ConversationState | None,
        account: AccountSnapshot | None,
    ) -> None:
        self.message = message
        self.conv = conv
        self.account = account

    def get(self, path: str, default: Any = None) -> Any:
        name = _ACCOUNT_FIELDS.get(path)
        if name is not None:
            if self.account is None:
                return False if name == "known" else default
            return getattr(self.account, name)
        name = _CONVERSATION_FIELDS.get(path)
        if name is not None:
            return default if self.conv is None else getattr(self.conv, name)
        name = _ACTION_FIELDS.get(path)
        if name is not None:
            action = self.message.proposed_action if self.message is not None else None
            return default if action is None else getattr(action, name)
        name = _MESSAGE_FIELDS.get(path)
        if name is not None:
            return default if self.message is None else getattr(self.message, name)
        return default

    def __getitem__(self, path: str) -> Any:
        if path not in FIELDS:
            raise KeyError(path)
        return self.get(path)

    def __iter__(self) -> Iterator[str]:
        return iter(FIELDS)

    def __len__(self) -> int:
        return len(FIELDS)


def facts(
    message: MessageEvent | None, conv: ConversationState | None, account: AccountSnapshot | None
) -> dict[str, Any]:
    """The whole field-path view as a plain dict (for display and tests)."""
    view = Facts(message, conv, account)
    return {path: view.get(path) for path in FIELDS}


def _hit(rule: str, reason: str, evidence: list[Evidence]) -> TriggerHit:
    return TriggerHit(
        trigger=TRIGGER, rule=rule, action="escalate", reason=reason, evidence=tuple(evidence)
    )


class RefundCheck(NamedTuple):
    """The refund check's hit (or None) and the limit it compared against (None: no limit)."""

    hit: TriggerHit | None
    limit: float | None


def refund_limit(
    action: ProposedAction, account: AccountSnapshot | None, policy: Policy, message_id: str
) -> RefundCheck:
    """A refund strictly above the limit; a limit by tier wins over one by currency.

    The limit is resolved here and only here: the decision records the one this check applied.
    """
    refund = policy.boundaries.refund
    amount = action.amount
    account_currency = account.currency if account is not None else None
    currency = action.currency or account_currency
    tier = account.tier if account is not None else None
    limit: float | None = None
    limit_currency: str | None = None
    if tier is not None and tier in refund.by_tier:
        limit, limit_currency = refund.by_tier[tier], account_currency
    elif currency is not None and currency in refund.by_currency:
        limit, limit_currency = refund.by_currency[currency], currency
    elif currency is None or account_currency is None or currency == account_currency:
        limit, limit_currency = refund.limit, account_currency
    if amount is None:
        hit = _hit(
            "boundary.refund_limit",
            "A refund of unknown amount cannot be checked against the refund limit.",
            [Evidence(kind="amount", detail="refund without an amount", message_id=message_id)],
        )
        return RefundCheck(hit, limit if limit is not None else refund.limit)
    if limit is None or (limit_currency is not None and currency not in (None, limit_currency)):
        shown = limit if limit is not None else refund.limit
        hit = _hit(
            "boundary.refund_currency",
            f"A refund in {currency} cannot be compared with the limit in {account_currency}.",
            [
                Evidence(
                    kind="amount",
                    detail=f"refund of {amount:.2f} {currency}",
                    message_id=message_id,
                    value=amount,
                ),
                Evidence(
                    kind="limit",
                    detail=f"limit {shown:.2f} {account_currency}",
                    threshold=shown,
                ),
            ],
        )
        return RefundCheck(hit, shown)
    if amount <= limit:
        return RefundCheck(None, limit)
    unit = f" {limit_currency}" if limit_currency else ""
    hit = _hit(
        "boundary.refund_limit",
        f"A refund of {amount:.2f}{unit} is above the AI agent's limit of {limit:.2f}{unit}.",
        [
            Evidence(
                kind="amount",
                detail=f"refund of {amount:.2f}{unit}",
                message_id=message_id,
                value=amount,
                ref=action.target,
            ),
            Evidence(
                kind="limit",
                detail=f"refund limit {limit:.2f}{unit}" + (f" for tier {tier}" if tier else ""),
                threshold=limit,
            ),
        ],
    )
    return RefundCheck(hit, limit)


def email_access(
    action: ProposedAction, account: AccountSnapshot | None, message_id: str
) -> TriggerHit | None:
    """Change or disclosure for an address that is not (or cannot be shown to be) the primary."""
    target = (action.target or "").strip().lower()
    primary = ((account.primary_email if account is not None else None) or "").strip().lower()
    if target and primary and target == primary:
        return None
    if not primary:
        why = "no primary email is on record, so the target cannot be verified"
    elif not target:
        why = "the action names no email address"
    else:
        why = "the email is not the account's primary email"
    return _hit(
        "boundary.non_primary_email",
        f"{action.type} for {action.target or 'an unspecified email'}: {why}.",
        [
            Evidence(
                kind="email",
                detail=why,
                message_id=message_id,
                text=action.target,
                ref=account.primary_email if account is not None else None,
            )
        ],
    )


def enterprise_cancellation(
    action: ProposedAction, account: AccountSnapshot | None, message_id: str
) -> TriggerHit | None:
    """Cancelling an enterprise contract; without an account snapshot it cannot be ruled out."""
    if account is not None and account.known and not account.enterprise_contract:
        return None
    if account is None or not account.known:
        why = "no account snapshot is known, so an enterprise contract cannot be ruled out"
    else:
        why = f"the account is bound by enterprise contract {account.contract_id or ''}".rstrip()
    return _hit(
        "boundary.enterprise_cancellation",
        f"Cancellation requested: {why}.",
        [
            Evidence(
                kind="contract",
                detail=why,
                message_id=message_id,
                ref=account.contract_id if account is not None else None,
            )
        ],
    )


def check(
    message: MessageEvent | None,
    conv: ConversationState | None,
    account: AccountSnapshot | None,
    policy: Policy,
) -> TriggerResult:
    """Authority limits on the proposed action, then operator rules over the current facts."""
    hits: list[TriggerHit] = []
    error: TriggerError | None = None
    applied: tuple[tuple[str, float], ...] = ()
    compiled = policy.compiled
    bounds = policy.boundaries
    action = message.proposed_action if message is not None else None
    if action is not None and message is not None:
        kind = action.type
        hit: TriggerHit | None = None
        if bounds.refund.enabled and kind in compiled.refund_types:
            hit, limit = refund_limit(action, account, policy, message.message_id)
            if limit is not None:
                applied = (("boundary.refund_limit", limit),)
        if hit is not None:
            hits.append(hit)
        hit = None
        if bounds.email_access.enabled and kind in compiled.email_types:
            hit = email_access(action, account, message.message_id)
        if hit is not None:
            hits.append(hit)
        hit = None
        if bounds.enterprise_cancellation.enabled and kind in compiled.cancel_types:
            hit = enterprise_cancellation(action, account, message.message_id)
        if hit is not None:
            hits.append(hit)
    if compiled.rules:
        known = Facts(message, conv, account)
        for rule in compiled.rules:
            try:
                matched = evaluate(rule.condition, known)
            except Exception as exc:
                # Per rule, not around the trigger: one operator rule that cannot evaluate must
                # not hide the others, and its error is on the result, where `step` makes the
                # decision fail safe.
                error = TriggerError(
                    TRIGGER, "rule_failed", f"{rule.rule}: {type(exc).__name__}: {exc}"
                )
                continue
            if not matched:
                continue
            evidence = [
                Evidence(
                    kind="flag" if pred.path == "account.flags" else "rule",
                    detail=f"{pred.path} {pred.op} {pred.value!r}",
                    message_id=message.message_id if message is not None else None,
                    ref=rule.rule,
                )
                for pred in matched_facts(rule.condition, known)
            ]
            hits.append(
                TriggerHit(
                    trigger=TRIGGER,
                    rule=rule.rule,
                    action=rule.action,
                    reason=rule.description or f"Operator rule {rule.name} matched.",
                    evidence=tuple(evidence),
                    priority=rule.priority,
                    message=rule.message,
                )
            )
    if not hits and error is None and not applied:
        return NO_HITS
    return TriggerResult(hits=tuple(hits), error=error, thresholds=applied)
