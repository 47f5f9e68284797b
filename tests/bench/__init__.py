"""The mock's performance against a bare Starlette app on the same server stack."""
