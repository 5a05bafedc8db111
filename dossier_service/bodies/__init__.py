"""Typed request bodies: one pydantic model per JSON body of the API, shared by the web forms.

The models validate what a request may say (types, lengths, codes, formats); the services
take them and check what depends on the database or the day (unknown unit, plausible
dates). ``parse`` turns a refusal into the one error shape; ``api.spec`` generates the
request schemas of ``api/openapi.json`` from the same models.
"""
