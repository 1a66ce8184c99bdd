"""The fault-injection matrix: servers, inputs and operators that misbehave, and secrets."""
