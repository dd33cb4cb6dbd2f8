"""The guide's WeCom sidebar (侧边栏): configuration (the app's agentid), who is looking (WeCom OAuth or a signed
link), and the customer view it shows. The H5 pages are in ``siyu.sidebar``."""
