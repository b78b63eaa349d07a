-- Sign-in and registration hardening.

-- The client address of audited requests that have one (OAuth events, rejected credentials):
-- the peer address, or the configured proxy header's. Never a port.
ALTER TABLE audit_log ADD COLUMN client_addr TEXT;
CREATE INDEX audit_log_tool_at ON audit_log (tool, at);

-- Registrations that never led to a grant expire; finding them needs grants by client.
CREATE INDEX oauth_grants_client ON oauth_grants (client_id);
CREATE INDEX oauth_clients_created ON oauth_clients (created_at);
