"""The guide's WeCom sidebar (侧边栏): a light server-rendered H5 app under ``/sidebar/{brand}/...``
(``siyu.sidebar.routes``), phone layout, a little vanilla JS for the WeCom JS-SDK."""
