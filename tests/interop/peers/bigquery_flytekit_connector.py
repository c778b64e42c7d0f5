"""Loaded by `pyflyte serve connector --modules bigquery_flytekit_connector` (in the flytekitplugins-bigquery
virtualenv) so that flytekit's own BigQuery connector runs against the BigQuery emulator, for side-by-side
comparison with Tern. The connector itself is unchanged; google-cloud-bigquery reaches the emulator through its
standard BIGQUERY_EMULATOR_HOST variable, and this module only makes Google's default credentials anonymous
(the connector calls `bigquery.Client()` without credentials, which would look for Application Default
Credentials, unavailable offline).
"""

import google.auth
from google.auth.credentials import AnonymousCredentials

import flytekitplugins.bigquery.connector  # noqa: F401  (registers the connector)


def _anonymous_default(scopes=None, request=None, quota_project_id=None, default_scopes=None):
    return AnonymousCredentials(), None


google.auth.default = _anonymous_default
