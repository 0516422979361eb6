"""Language-model providers: OpenAI-compatible chat-completions endpoints.

`config` (the `providers` section of the server's TOML file), `pricing` (what tokens
cost, from each provider's price table), `usage` (token counts from a completion),
`errors` (a provider's failure as a retry category), `confidence` (a confidence score
from logprobs) and `client` (one chat completion over the official `openai` client).
Nothing is imported here, so each user takes only the modules it needs.
"""
