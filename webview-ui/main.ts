// placeholder until the panel lands
export {};
