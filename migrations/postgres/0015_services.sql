-- The service lane (issue 23): contracted home-care providers in the live ledger, their
-- workers (responders who name a provider), and service orders with their own log.

-- A responder who works for a provider is a service worker: offered the provider's orders,
-- never an emergency by the ladder.
ALTER TABLE responders ADD COLUMN provider_id TEXT;
CREATE INDEX responders_provider ON responders (provider_id);

CREATE TABLE providers (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    phone      TEXT,
    -- What it offers (category, price in fen, daily capacity), where it serves (stations'
    -- circles or GeoJSON polygons) and its hours, as JSON: anxin_core::service::Provider.
    body       TEXT NOT NULL,
    ledger_seq BIGINT NOT NULL DEFAULT 0,
    retired_at BIGINT
);

-- An order as it is now, a row an order. The engine writes it in its commits; open orders,
-- and this and last month's, are read back at start (capacity and allowance still count).
CREATE TABLE service_orders (
    id          BIGINT PRIMARY KEY,
    elder_id    TEXT NOT NULL,
    category    TEXT NOT NULL,
    -- offered, unmatched, accepted, en_route, on_site, done, confirmed, disputed, settled,
    -- cancelled
    state       TEXT NOT NULL,
    -- the provider holding it, once one accepted
    provider_id TEXT,
    -- the wanted window, ms since the epoch
    window_from BIGINT NOT NULL,
    window_to   BIGINT NOT NULL,
    placed_at   BIGINT NOT NULL,
    -- the engine's time of the row's last change; an older row never replaces a newer
    updated_at  BIGINT NOT NULL,
    -- the whole order as JSON (anxin_core::ServiceOrder)
    body        TEXT NOT NULL
);
CREATE INDEX service_orders_state ON service_orders (state);
CREATE INDEX service_orders_elder ON service_orders (elder_id, window_from);
CREATE INDEX service_orders_provider ON service_orders (provider_id, window_from);
CREATE INDEX service_orders_window ON service_orders (window_from);

-- Every change to an order, with who made it.
CREATE TABLE service_order_events (
    seq      BIGINT PRIMARY KEY,
    order_id BIGINT NOT NULL,
    at       BIGINT NOT NULL,
    -- device:<id>, engine, responder:<id>, dispatcher:<id> or family:<contact id>
    actor    TEXT NOT NULL,
    -- the change's name (placed, offered, accepted, ...)
    change   TEXT NOT NULL,
    -- the change as JSON (anxin_core::OrderChange)
    body     TEXT NOT NULL
);
CREATE INDEX service_order_events_order ON service_order_events (order_id, seq);
