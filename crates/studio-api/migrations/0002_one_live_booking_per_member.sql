-- A member holds at most one live (not cancelled) booking per occurrence.
CREATE UNIQUE INDEX bookings_one_live_per_member
    ON bookings (occurrence_id, member_id) WHERE status != 'cancelled';
