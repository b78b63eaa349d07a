-- One timestamp format (src/store/time.rs): UTC to the millisecond, `2026-12-02T10:04:48.123Z`,
-- fixed width so text order is time order. Keys and idempotency rows were written to the second,
-- OAuth rows to the millisecond with the same shape; the audit log already used this format (and
-- is append-only). A value SQLite cannot read as a time is left as it was.
UPDATE api_keys SET created_at = strftime('%Y-%m-%dT%H:%M:%fZ', created_at)
  WHERE strftime('%Y-%m-%dT%H:%M:%fZ', created_at) IS NOT NULL;
UPDATE api_keys SET expires_at = strftime('%Y-%m-%dT%H:%M:%fZ', expires_at)
  WHERE strftime('%Y-%m-%dT%H:%M:%fZ', expires_at) IS NOT NULL;
UPDATE api_keys SET last_used_at = strftime('%Y-%m-%dT%H:%M:%fZ', last_used_at)
  WHERE strftime('%Y-%m-%dT%H:%M:%fZ', last_used_at) IS NOT NULL;
UPDATE api_keys SET revoked_at = strftime('%Y-%m-%dT%H:%M:%fZ', revoked_at)
  WHERE strftime('%Y-%m-%dT%H:%M:%fZ', revoked_at) IS NOT NULL;
UPDATE idempotency SET created_at = strftime('%Y-%m-%dT%H:%M:%fZ', created_at)
  WHERE strftime('%Y-%m-%dT%H:%M:%fZ', created_at) IS NOT NULL;
UPDATE oauth_clients SET created_at = strftime('%Y-%m-%dT%H:%M:%fZ', created_at)
  WHERE strftime('%Y-%m-%dT%H:%M:%fZ', created_at) IS NOT NULL;
UPDATE oauth_grants SET created_at = strftime('%Y-%m-%dT%H:%M:%fZ', created_at)
  WHERE strftime('%Y-%m-%dT%H:%M:%fZ', created_at) IS NOT NULL;
UPDATE oauth_grants SET last_used_at = strftime('%Y-%m-%dT%H:%M:%fZ', last_used_at)
  WHERE strftime('%Y-%m-%dT%H:%M:%fZ', last_used_at) IS NOT NULL;
UPDATE oauth_grants SET revoked_at = strftime('%Y-%m-%dT%H:%M:%fZ', revoked_at)
  WHERE strftime('%Y-%m-%dT%H:%M:%fZ', revoked_at) IS NOT NULL;
UPDATE oauth_codes SET expires_at = strftime('%Y-%m-%dT%H:%M:%fZ', expires_at)
  WHERE strftime('%Y-%m-%dT%H:%M:%fZ', expires_at) IS NOT NULL;
UPDATE oauth_codes SET used_at = strftime('%Y-%m-%dT%H:%M:%fZ', used_at)
  WHERE strftime('%Y-%m-%dT%H:%M:%fZ', used_at) IS NOT NULL;
UPDATE oauth_tokens SET expires_at = strftime('%Y-%m-%dT%H:%M:%fZ', expires_at)
  WHERE strftime('%Y-%m-%dT%H:%M:%fZ', expires_at) IS NOT NULL;
UPDATE oauth_tokens SET used_at = strftime('%Y-%m-%dT%H:%M:%fZ', used_at)
  WHERE strftime('%Y-%m-%dT%H:%M:%fZ', used_at) IS NOT NULL;
UPDATE oauth_tokens SET revoked_at = strftime('%Y-%m-%dT%H:%M:%fZ', revoked_at)
  WHERE strftime('%Y-%m-%dT%H:%M:%fZ', revoked_at) IS NOT NULL;
