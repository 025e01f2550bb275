"""The protocol messages the proxy reads or builds (one module each, like PgDog's
``net/messages``); everything else is relayed without being decoded."""
