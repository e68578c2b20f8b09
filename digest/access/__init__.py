"""Who may use the owner's side of digest: the HTTP API's bearer tokens (`tokens`).

Nothing is imported here.
"""
