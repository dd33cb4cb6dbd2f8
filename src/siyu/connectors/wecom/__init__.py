"""WeCom (企业微信) connector: callback crypto, the API client and its error table."""
