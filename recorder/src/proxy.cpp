// placeholder until the proxy lands
