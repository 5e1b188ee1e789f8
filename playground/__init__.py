"""A local stand-in for Slack: its Web API (with Slack's envelopes, error codes and limits), the signed
payloads Slack sends to a bot, and (in `opsbot dev`) a page to use it from. The tests drive opsbot
through it too, so there is one implementation of what Slack does."""
