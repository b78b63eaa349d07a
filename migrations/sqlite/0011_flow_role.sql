-- The role the studio platform gave the user who signed in during a flow (`owner`, `admin`,
-- `staff`): the consent step, on any replica, caps what they may grant by it
-- (policies/roles/). NULL before the sign-in, or when the platform said no role.
ALTER TABLE oauth_flows ADD COLUMN user_role TEXT;
