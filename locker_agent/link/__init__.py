"""The agent's side of the cabinet ↔ server MQTT link, and what only the link needs.

``mqtt`` is the one adapter that owns the paho client (its client construction is shared
with the simulated fleet); ``guard`` decides which received commands may run (sans-IO,
over the small ``GuardStore`` Protocol that ``guard_store`` implements on the journal);
``commands`` runs the accepted ones; ``inbound`` admits ``evt/ack`` and ``sync``;
``outbox`` publishes from the journal; ``presence`` counts connections; ``refusals``
bounds the record of refused messages. The journal itself (:mod:`locker_agent.journal`)
and the offline allow-list (:mod:`locker_agent.pickup`) are not the link's: the runtime
(:mod:`locker_agent.runtime`) wires them together. The wire format lives in
:mod:`locker_contract`.
"""
