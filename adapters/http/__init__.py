"""The HTTP event source: the template's API Gateway routes, served locally.

An aiohttp server (port 3000 by default, as ``sam local start-api``) turns
requests into the exact API Gateway proxy events — payload format 1.0 for
REST APIs (``Api`` events), 2.0 for HTTP APIs (``HttpApi`` events) unless
they ask for 1.0 — invokes the routed function synchronously over the bus
and turns its answer into the HTTP response, so web handlers written for
API Gateway run unmodified.

Modules, in request order: :mod:`.routes` (route table and matching),
:mod:`.auth_config` / :mod:`.auth` / :mod:`.jwt_auth` (API keys, Lambda and
JWT authorizers), :mod:`.cors`, :mod:`.events_v1` / :mod:`.events_v2`,
:mod:`.responses`, :mod:`.dispatch` (the pipeline) and :mod:`.server`
(lifecycle). Everything but the last two is pure and tested without a server.

lambdabus's own settings (DESIGN.md: never invented SAM keys):

- a function's ``Metadata: lambdabus: async_routes: [EventName, ...]`` serves
  those Api/HttpApi events asynchronously (202, invoked with retries);
- top-level ``Metadata: lambdabus: api_keys: [...]`` and the
  ``LAMBDABUS_API_KEYS`` variable list valid ``x-api-key`` values;
- top-level ``Metadata: lambdabus: jwks: {AuthorizerName: file-or-URL}`` gives
  a JWT authorizer its keys without reaching the issuer.
"""

from .auth_config import GatewayConfigError
from .route_building import build_routes
from .routes import Route, RouteTable
from .server import ApiGateway, serves_http

__all__ = ["ApiGateway", "GatewayConfigError", "Route", "RouteTable", "build_routes", "serves_http"]
