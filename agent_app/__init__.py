"""The agent service: HTTP/WebSocket API, queue workers and adapters over one core.

Layout: ``core`` (session, tools, LLM port, ports) never imports a transport or cloud SDK;
``adapters`` implement the ports; ``api`` and ``worker`` only translate. See docs/agent_app.md.
"""

__version__ = "0.1.0"
