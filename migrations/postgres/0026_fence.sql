-- The fence as one call (issue 25, docs/architecture.md "Leases and fencing"): takes each
-- lease's advisory lock shared, in the order given (the caller sorts the keys: an acquire
-- takes one lock only, so no order of commits and acquires can deadlock), then checks each
-- epoch, raising SQLSTATE AXFEN when one has moved on (DETAIL: the key and the epoch now, as
-- JSON). A VOLATILE function's statements each take a new snapshot, so the epochs are read
-- after the locks were granted, and see an acquire that committed while a lock was awaited:
-- the fence can sit inside the statement that writes, rather than in two statements of its
-- own before it (two round trips fewer a commit). Written before the check or after it, what
-- that statement wrote is rolled back with it when the check raises.
CREATE OR REPLACE FUNCTION anxin_fence(keys TEXT[], epochs BIGINT[]) RETURNS INTEGER
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    k TEXT;
    now_epoch BIGINT;
    n INTEGER := COALESCE(array_length(keys, 1), 0);
BEGIN
    IF n <> COALESCE(array_length(epochs, 1), 0) THEN
        RAISE EXCEPTION 'anxin_fence: % keys but % epochs', n, COALESCE(array_length(epochs, 1), 0);
    END IF;
    FOREACH k IN ARRAY COALESCE(keys, '{}') LOOP
        PERFORM pg_advisory_xact_lock_shared(hashtextextended(k, 0));
    END LOOP;
    FOR i IN 1 .. n LOOP
        SELECT epoch INTO now_epoch FROM leases WHERE key = keys[i];
        IF now_epoch IS DISTINCT FROM epochs[i] THEN
            RAISE EXCEPTION USING ERRCODE = 'AXFEN',
                MESSAGE = format('fenced: lease %s is at epoch %s, this node holds epoch %s',
                                 keys[i], COALESCE(now_epoch::TEXT, 'none'), epochs[i]),
                DETAIL = json_build_object('key', keys[i], 'now', now_epoch)::TEXT;
        END IF;
    END LOOP;
    RETURN n;
END
$$;
