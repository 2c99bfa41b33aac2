-- Issue 20 (item 3): rides by region. Owned by actors/rides (actors/rides/regions.py).
--
-- With SPLITGO_RIDE_REGIONS set, each region's shard dispatches the rides whose `region`
-- names it: a ride starts in the region of its pickup and moves, once, to a neighbouring
-- region whose driver near the border is nearer. NULL (one shard for the world, or a ride
-- made before regions) means the region of the pickup.
ALTER TABLE rides ADD COLUMN region text;

-- A driver has at most one ride in hand: the region that owns the driver decides every
-- assignment (one writer per driver); this makes the database refuse a second one too.
CREATE UNIQUE INDEX rides_one_per_driver ON rides (driver_id)
    WHERE status IN ('driver_assigned', 'driver_arrived', 'in_progress');
