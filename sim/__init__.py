"""dora's local Kalshi exchange: matching engine, flow agents, REST + WebSocket server.

See docs/simulator.md. ``sim.world.World`` runs it in-process on a virtual clock;
``sim.server.start`` serves it on 127.0.0.1 (``dora sim``).
"""
