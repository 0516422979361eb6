"""The `integration` node kind: one action of an app (Slack, email, a webhook) per step.

```yaml
- id: slack_integration
  type: integration
  config:
    app: slack
    action: chat.postMessage
    slack: {token: "{{ secrets.SLACK_BOT_TOKEN }}"}
    input_mapping: {channel: general, text: "{{ nodes.model.output.content }}"}
```

`app` and `action` say what to do; the block named after the app says how to reach it
(credentials from secrets); `input_mapping` is what is sent. The step records them as
Arcee records its integration steps (seed 000): `app_name`, `action`, `input_mapping`,
`tool_config` (the block, credentials as `***`), `run_id` and `input_data`; its output is
`{"result": {"data", "error", "successful"}}` with the app's answer in `data`. A failed
action is an error step whose `step_metadata` holds the same shape with the app's answer.
"""

from __future__ import annotations

import uuid
from typing import Any, Literal, cast

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from stepline.nodes.base import NodeContext, NodeKind, NodeResult
from stepline.nodes.integrations import email as email_app
from stepline.nodes.integrations import slack as slack_app
from stepline.nodes.integrations import webhook as webhook_app
from stepline.nodes.integrations.common import Call, result
from stepline.settings import get_settings

App = Literal["slack", "email", "webhook"]

FIXED_ACTIONS: dict[str, str] = {"email": "send", "webhook": "post"}
"""The one action of the apps that have one (the default when `action` is left out)."""


class IntegrationConfig(BaseModel):
    """One action of one app."""

    model_config = ConfigDict(extra="forbid")

    app: App = Field(description="The app: slack, email or webhook.")
    action: str | None = Field(
        default=None,
        description="Slack: a Web API method (chat.postMessage, chat.meMessage, "
        "files.upload...); email: send; webhook: post.",
    )
    input_mapping: dict[str, Any] = Field(
        default_factory=dict,
        description="What is sent: the Slack method's arguments; an email's from, to, cc, "
        "bcc, reply_to, subject, text and html; a webhook's JSON body.",
    )
    slack: slack_app.SlackSettings | None = None
    email: email_app.SmtpSettings | None = None
    webhook: webhook_app.WebhookSettings | None = None

    @model_validator(mode="after")
    def _settings_match_the_app(self) -> IntegrationConfig:
        for other in ("slack", "email", "webhook"):
            if other != self.app and getattr(self, other) is not None:
                raise ValueError(f"`{other}` settings given, but app is {self.app!r}")
        if getattr(self, self.app) is None:
            raise ValueError(f"app {self.app!r} needs its `{self.app}` settings")
        if self.app in FIXED_ACTIONS:
            fixed = FIXED_ACTIONS[self.app]
            if self.action not in (None, fixed):
                raise ValueError(f"the {self.app} app's only action is {fixed!r}")
            self.action = fixed
        elif self.action is None:
            raise ValueError("`action` is required: a Slack Web API method, e.g. chat.postMessage")
        elif slack_app.method_for(self.action) is None:
            raise ValueError(f"action {self.action!r} is not a Slack Web API method name")
        if self.app == "email":
            problems = email_app.mapping_problems(self.input_mapping)
            if problems:
                raise ValueError("input_mapping: " + "; ".join(problems))
        return self

    def tool_config(self) -> dict[str, Any]:
        """The app's settings as recorded: no credential in them."""
        recorded: dict[str, Any] = {"tool_type": self.app}
        if self.slack is not None:
            recorded |= slack_app.recorded_settings(self.slack)
        elif self.email is not None:
            recorded |= email_app.recorded_settings(self.email)
        elif self.webhook is not None:
            recorded |= webhook_app.recorded_settings(self.webhook)
        return recorded


class IntegrationNode(NodeKind):
    """Performs the action; the app's refusal is an error whose category says whether to
    retry (rate limits quota, passing trouble transient, the rest permanent)."""

    type = "integration"
    config_model = IntegrationConfig
    description = (
        "Sends to an app: a Slack Web API method, an email over SMTP, or a signed webhook; "
        "outputs {result: {data, error, successful}}."
    )
    raw_fields = frozenset({"app", "action"})
    records_run_context = True

    def recorded_inputs(self, inputs: dict[str, Any]) -> dict[str, Any]:
        """Seed 000's fields; the app's settings only as `tool_config`, credentials masked."""
        try:
            config = IntegrationConfig.model_validate(inputs)
        except ValidationError:
            # Never reached by the engine (it validates first); keep nothing of the settings.
            return {
                "app_name": inputs.get("app"),
                "action": inputs.get("action"),
                "input_mapping": inputs.get("input_mapping"),
            }
        return {
            "app_name": config.app,
            "action": config.action,
            "input_mapping": config.input_mapping,
            "tool_config": config.tool_config(),
        }

    async def run(self, ctx: NodeContext) -> NodeResult:
        config = cast(IntegrationConfig, ctx.config)
        call = Call(
            action=config.action or "",
            input_mapping=config.input_mapping,
            timeout_s=ctx.timeout_s or get_settings().http_timeout_s,
            delivery_id=str(uuid.uuid5(uuid.NAMESPACE_URL, f"stepline:{ctx.run_id}/{ctx.step_id}")),
            http=ctx.services.http,
        )
        data: Any
        if config.slack is not None:
            data = await slack_app.perform(config.slack, call)
        elif config.email is not None:
            data = await email_app.perform(config.email, call)
        else:
            assert config.webhook is not None  # the config model requires the app's settings
            data = await webhook_app.perform(config.webhook, call)
        return NodeResult(output=result(data))
