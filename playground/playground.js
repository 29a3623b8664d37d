// Starts GraphiQL with the settings the server put into #graphiql-config (see __init__.py).
// Loaded after the UMD builds, which define the globals React, ReactDOM, GraphiQL, graphqlWs.
(function () {
  "use strict";
  var config = JSON.parse(document.getElementById("graphiql-config").textContent);
  var httpUrl = new URL(config.endpoint, window.location.href);
  var wsUrl = new URL(httpUrl.href);
  wsUrl.protocol = httpUrl.protocol === "https:" ? "wss:" : "ws:";

  // Subscriptions run over graphql-transport-ws at the same URL. A WebSocket cannot carry
  // HTTP headers, so the header editor's headers go in connection_init's payload; a change
  // of headers replaces the (lazy, so not yet connected) client and its fetcher.
  var current = { key: null, client: null, fetcher: null };
  function fetcherFor(headers) {
    var key = JSON.stringify(headers);
    if (current.key !== key) {
      if (current.client) current.client.dispose();
      var client = graphqlWs.createClient({ url: wsUrl.href, connectionParams: headers });
      current = {
        key: key,
        client: client,
        fetcher: GraphiQL.createFetcher({ url: httpUrl.href, wsClient: client }),
      };
    }
    return current.fetcher;
  }

  // The header editor's text as last edited. GraphiQL 4 fetches the schema before its header
  // editor exists and then sends no headers (a 401 here), so the fetcher falls back to this.
  var headersText = config.defaultHeaders;
  function parseHeaders(text) {
    try {
      var headers = JSON.parse(text || "{}");
      return headers && typeof headers === "object" ? headers : {};
    } catch (error) {
      return {};
    }
  }

  ReactDOM.createRoot(document.getElementById("graphiql")).render(
    React.createElement(GraphiQL, {
      fetcher: function (params, options) {
        var headers = (options && options.headers) || parseHeaders(headersText);
        return fetcherFor(headers)(params, Object.assign({}, options, { headers: headers }));
      },
      onEditHeaders: function (text) {
        headersText = text;
      },
      defaultQuery: config.defaultQuery,
      defaultHeaders: config.defaultHeaders,
      isHeadersEditorEnabled: true,
      defaultEditorToolsVisibility: "headers",
      // Tokens stay out of localStorage; a dev token changes on every restart anyway.
      shouldPersistHeaders: false,
    }),
  );
})();
