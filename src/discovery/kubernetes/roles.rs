//! Target groups of each role from the watched objects, with Prometheus'
//! `__meta_kubernetes_*` labels. The role keeps every watched resource in
//! a store and rebuilds the groups of the objects a change touches (a pod
//! change rebuilds the endpoints that point at it, a node change the pods
//! on it when node metadata is attached, ...).

use super::objects::{
    Container, EndpointSlice, Endpoints, Ingress, Meta, Namespace, Node, ObjectRef, Pod, Service,
};
use super::watch::{Change, Kind, Obj};
use crate::config::TargetGroup;
use crate::discovery::config::Role;
use crate::discovery::{join_host_port, sanitize_label_name};
use std::collections::{BTreeMap, BTreeSet, HashMap};

type LabelSet = BTreeMap<String, String>;

const PREFIX: &str = "__meta_kubernetes_";
const ADDRESS: &str = "__address__";

/// A group as Prometheus builds it: shared labels, labels per target.
#[derive(Debug, Default)]
pub struct Group {
    pub source: String,
    pub labels: LabelSet,
    pub targets: Vec<LabelSet>,
}

fn l(name: &str) -> String {
    format!("{PREFIX}{name}")
}

fn set(ls: &mut LabelSet, name: &str, v: impl Into<String>) {
    ls.insert(l(name), v.into());
}

fn object_labels(ls: &mut LabelSet, meta: &Meta, resource: &str) {
    for (k, v) in &meta.labels {
        let n = sanitize_label_name(k);
        set(ls, &format!("{resource}_label_{n}"), v.clone());
        set(ls, &format!("{resource}_labelpresent_{n}"), "true");
    }
    for (k, v) in &meta.annotations {
        let n = sanitize_label_name(k);
        set(ls, &format!("{resource}_annotation_{n}"), v.clone());
        set(ls, &format!("{resource}_annotationpresent_{n}"), "true");
    }
}

fn object_meta_labels(ls: &mut LabelSet, meta: &Meta, role: &str) {
    set(ls, &format!("{role}_name"), meta.name.clone());
    object_labels(ls, meta, role);
}

/// What a role needs besides its own objects.
#[derive(Clone, Copy, Debug)]
pub struct Attach {
    pub node: bool,
    pub namespace: bool,
}

/// Every watched object of one discovery entry, and the groups last sent.
pub struct State {
    pub role: Role,
    attach: Attach,
    pods: HashMap<String, Pod>,
    services: HashMap<String, Service>,
    endpoints: HashMap<String, Endpoints>,
    slices: HashMap<String, EndpointSlice>,
    ingresses: HashMap<String, Ingress>,
    nodes: HashMap<String, Node>,
    namespaces: HashMap<String, Namespace>,
    /// Keys of the role's own objects to rebuild.
    dirty: BTreeSet<String>,
}

impl State {
    pub fn new(role: Role, attach: Attach) -> Self {
        State {
            role,
            attach,
            pods: HashMap::new(),
            services: HashMap::new(),
            endpoints: HashMap::new(),
            slices: HashMap::new(),
            ingresses: HashMap::new(),
            nodes: HashMap::new(),
            namespaces: HashMap::new(),
            dirty: BTreeSet::new(),
        }
    }

    /// The resources this role watches.
    pub fn kinds(role: Role, attach: Attach) -> Vec<Kind> {
        let mut k = match role {
            Role::Pod => vec![Kind::Pod],
            Role::Service => vec![Kind::Service],
            Role::Endpoints => vec![Kind::Endpoints, Kind::Service, Kind::Pod],
            Role::EndpointSlice => vec![Kind::EndpointSlice, Kind::Service, Kind::Pod],
            Role::Ingress => vec![Kind::Ingress],
            Role::Node => vec![Kind::Node],
        };
        let nodes_help = matches!(role, Role::Pod | Role::Endpoints | Role::EndpointSlice);
        if attach.node && nodes_help {
            k.push(Kind::Node);
        }
        if attach.namespace && role != Role::Node {
            k.push(Kind::Namespace);
        }
        k
    }

    fn primary(&self) -> Kind {
        match self.role {
            Role::Pod => Kind::Pod,
            Role::Service => Kind::Service,
            Role::Endpoints => Kind::Endpoints,
            Role::EndpointSlice => Kind::EndpointSlice,
            Role::Ingress => Kind::Ingress,
            Role::Node => Kind::Node,
        }
    }

    fn primary_keys(&self) -> Vec<String> {
        match self.role {
            Role::Pod => self.pods.keys().cloned().collect(),
            Role::Service => self.services.keys().cloned().collect(),
            Role::Endpoints => self.endpoints.keys().cloned().collect(),
            Role::EndpointSlice => self.slices.keys().cloned().collect(),
            Role::Ingress => self.ingresses.keys().cloned().collect(),
            Role::Node => self.nodes.keys().cloned().collect(),
        }
    }

    /// Applies one change to the stores and marks what it touches.
    pub fn apply(&mut self, kind: Kind, change: Change) {
        let primary = kind == self.primary();
        match change {
            Change::Upsert(o) => {
                let key = o.meta().key();
                self.touch(kind, &key, Some(&o));
                self.insert(o);
                if primary {
                    self.dirty.insert(key);
                }
            }
            Change::Delete(key) => {
                self.touch(kind, &key, None);
                self.remove(kind, &key);
                if primary {
                    self.dirty.insert(key);
                }
            }
            Change::Replace { namespace, items } => {
                let in_scope = |k: &String| match &namespace {
                    None => true,
                    Some(ns) => k.split_once('/').is_some_and(|(n, _)| n == ns),
                };
                let old: Vec<String> = self.keys(kind).into_iter().filter(in_scope).collect();
                for k in &old {
                    self.remove(kind, k);
                }
                for o in items {
                    self.insert(o);
                }
                if primary {
                    self.dirty.extend(old);
                }
                // Cheap enough on a relist: rebuild every group.
                let all = self.primary_keys();
                self.dirty.extend(all);
            }
        }
    }

    fn keys(&self, kind: Kind) -> Vec<String> {
        match kind {
            Kind::Pod => self.pods.keys().cloned().collect(),
            Kind::Service => self.services.keys().cloned().collect(),
            Kind::Endpoints => self.endpoints.keys().cloned().collect(),
            Kind::EndpointSlice => self.slices.keys().cloned().collect(),
            Kind::Ingress => self.ingresses.keys().cloned().collect(),
            Kind::Node => self.nodes.keys().cloned().collect(),
            Kind::Namespace => self.namespaces.keys().cloned().collect(),
        }
    }

    fn insert(&mut self, o: Obj) {
        let key = o.meta().key();
        match o {
            Obj::Pod(x) => {
                self.pods.insert(key, x);
            }
            Obj::Service(x) => {
                self.services.insert(key, x);
            }
            Obj::Endpoints(x) => {
                self.endpoints.insert(key, x);
            }
            Obj::EndpointSlice(x) => {
                self.slices.insert(key, x);
            }
            Obj::Ingress(x) => {
                self.ingresses.insert(key, x);
            }
            Obj::Node(x) => {
                self.nodes.insert(key, x);
            }
            Obj::Namespace(x) => {
                self.namespaces.insert(key, x);
            }
        }
    }

    fn remove(&mut self, kind: Kind, key: &str) {
        match kind {
            Kind::Pod => drop(self.pods.remove(key)),
            Kind::Service => drop(self.services.remove(key)),
            Kind::Endpoints => drop(self.endpoints.remove(key)),
            Kind::EndpointSlice => drop(self.slices.remove(key)),
            Kind::Ingress => drop(self.ingresses.remove(key)),
            Kind::Node => drop(self.nodes.remove(key)),
            Kind::Namespace => drop(self.namespaces.remove(key)),
        }
    }

    /// Marks the role's objects that depend on a changed secondary object.
    fn touch(&mut self, kind: Kind, key: &str, new: Option<&Obj>) {
        if kind == self.primary() {
            return;
        }
        let mut marks: Vec<String> = Vec::new();
        match kind {
            Kind::Node => match self.role {
                Role::Pod => marks.extend(
                    self.pods
                        .iter()
                        .filter(|(_, p)| p.spec.node_name == key)
                        .map(|(k, _)| k.clone()),
                ),
                _ => marks.extend(self.primary_keys()),
            },
            Kind::Namespace => {
                let prefix = format!("{key}/");
                marks.extend(
                    self.primary_keys()
                        .into_iter()
                        .filter(|k| k.starts_with(&prefix)),
                );
            }
            Kind::Service => match self.role {
                Role::Endpoints if self.endpoints.contains_key(key) => {
                    marks.push(key.to_string());
                }
                Role::EndpointSlice => {
                    let (ns, name) = key.split_once('/').unwrap_or(("", key));
                    marks.extend(
                        self.slices
                            .iter()
                            .filter(|(_, s)| {
                                s.metadata.namespace == ns
                                    && s.metadata
                                        .labels
                                        .get("kubernetes.io/service-name")
                                        .is_some_and(|n| n == name)
                            })
                            .map(|(k, _)| k.clone()),
                    );
                }
                _ => {}
            },
            Kind::Pod => {
                let refers = |r: &Option<ObjectRef>| {
                    r.as_ref().is_some_and(|r| {
                        r.kind == "Pod" && format!("{}/{}", r.namespace, r.name) == key
                    })
                };
                match self.role {
                    Role::Endpoints => marks.extend(
                        self.endpoints
                            .iter()
                            .filter(|(_, e)| {
                                e.subsets.iter().any(|s| {
                                    s.addresses
                                        .iter()
                                        .chain(&s.not_ready_addresses)
                                        .any(|a| refers(&a.target_ref))
                                })
                            })
                            .map(|(k, _)| k.clone()),
                    ),
                    Role::EndpointSlice => marks.extend(
                        self.slices
                            .iter()
                            .filter(|(_, s)| s.endpoints.iter().any(|e| refers(&e.target_ref)))
                            .map(|(k, _)| k.clone()),
                    ),
                    _ => {}
                }
            }
            _ => {}
        }
        let _ = new;
        self.dirty.extend(marks);
    }

    /// The groups of every object marked since the last call: one group
    /// per object, sourced as Prometheus does (`pod/NS/NAME`), with a
    /// target per port; a group without targets removes the object's.
    pub fn flush(&mut self) -> Vec<TargetGroup> {
        let dirty = std::mem::take(&mut self.dirty);
        let mut out = Vec::with_capacity(dirty.len());
        for key in dirty {
            let (source, group) = self.build(&key);
            let Group {
                mut labels,
                targets: sets,
                ..
            } = group.unwrap_or_default();
            let shared_addr = labels.remove(ADDRESS);
            let mut targets = Vec::with_capacity(sets.len());
            let mut target_labels = Vec::with_capacity(sets.len());
            for mut t in sets {
                let addr = t
                    .remove(ADDRESS)
                    .or_else(|| shared_addr.clone())
                    .unwrap_or_default();
                targets.push(addr);
                target_labels.push(t);
            }
            out.push(TargetGroup {
                targets,
                labels,
                source,
                target_labels,
            });
        }
        out
    }

    /// The source of the object `key` and its group (None: removed or no
    /// targets).
    fn build(&self, key: &str) -> (String, Option<Group>) {
        match self.role {
            Role::Pod => (
                format!("pod/{key}"),
                self.pods.get(key).and_then(|p| self.build_pod(p)),
            ),
            Role::Service => (
                format!("svc/{key}"),
                self.services.get(key).map(|s| self.build_service(s)),
            ),
            Role::Endpoints => (
                format!("endpoints/{key}"),
                self.endpoints.get(key).map(|e| self.build_endpoints(e)),
            ),
            Role::EndpointSlice => (
                format!("endpointslice/{key}"),
                self.slices.get(key).map(|e| self.build_slice(e)),
            ),
            Role::Ingress => (
                format!("ingress/{key}"),
                self.ingresses.get(key).map(|i| self.build_ingress(i)),
            ),
            Role::Node => (
                format!("node/{key}"),
                self.nodes.get(key).and_then(build_node),
            ),
        }
    }

    fn namespace_labels(&self, ls: &mut LabelSet, ns: &str) {
        if !self.attach.namespace {
            return;
        }
        if let Some(n) = self.namespaces.get(ns) {
            object_labels(ls, &n.metadata, "namespace");
        }
    }

    fn node_labels(&self, ls: &mut LabelSet, node: Option<&str>) {
        if !self.attach.node {
            return;
        }
        if let Some(n) = node.and_then(|n| self.nodes.get(n)) {
            object_meta_labels(ls, &n.metadata, "node");
        }
    }

    fn build_pod(&self, pod: &Pod) -> Option<Group> {
        if pod.status.pod_ip.is_empty() {
            return None;
        }
        if self.attach.node && !self.nodes.contains_key(&pod.spec.node_name) {
            return None;
        }
        let mut labels = pod_labels(pod);
        set(&mut labels, "namespace", pod.metadata.namespace.clone());
        if self.attach.node {
            self.node_labels(&mut labels, Some(&pod.spec.node_name));
        }
        self.namespace_labels(&mut labels, &pod.metadata.namespace);
        let mut targets = Vec::new();
        for (c, init) in containers(pod) {
            let statuses = if init {
                &pod.status.init_container_statuses
            } else {
                &pod.status.container_statuses
            };
            let id = statuses
                .iter()
                .find(|s| s.name == c.name)
                .map(|s| s.container_id.clone())
                .unwrap_or_default();
            let mut base = LabelSet::new();
            set(&mut base, "pod_container_name", c.name.clone());
            set(&mut base, "pod_container_id", id);
            set(&mut base, "pod_container_image", c.image.clone());
            set(&mut base, "pod_container_init", init.to_string());
            if c.ports.is_empty() {
                let mut t = base;
                t.insert(ADDRESS.into(), pod.status.pod_ip.clone());
                targets.push(t);
                continue;
            }
            for p in &c.ports {
                let mut t = base.clone();
                let port = p.container_port.to_string();
                t.insert(ADDRESS.into(), join_host_port(&pod.status.pod_ip, &port));
                set(&mut t, "pod_container_port_number", port);
                set(&mut t, "pod_container_port_name", p.name.clone());
                set(&mut t, "pod_container_port_protocol", p.protocol.clone());
                targets.push(t);
            }
        }
        Some(Group {
            source: String::new(),
            labels,
            targets,
        })
    }

    fn build_service(&self, svc: &Service) -> Group {
        let mut labels = service_labels(svc);
        self.namespace_labels(&mut labels, &svc.metadata.namespace);
        let mut targets = Vec::new();
        for p in &svc.spec.ports {
            let mut t = LabelSet::new();
            let host = format!("{}.{}.svc", svc.metadata.name, svc.metadata.namespace);
            t.insert(ADDRESS.into(), join_host_port(&host, p.port));
            set(&mut t, "service_port_name", p.name.clone());
            set(&mut t, "service_port_number", p.port.to_string());
            set(&mut t, "service_port_protocol", p.protocol.clone());
            set(&mut t, "service_type", svc.spec.kind.clone());
            if svc.spec.kind == "ExternalName" {
                set(
                    &mut t,
                    "service_external_name",
                    svc.spec.external_name.clone(),
                );
            } else {
                set(&mut t, "service_cluster_ip", svc.spec.cluster_ip.clone());
            }
            if svc.spec.kind == "LoadBalancer" {
                let ips: Vec<&str> = svc
                    .status
                    .load_balancer
                    .ingress
                    .iter()
                    .filter(|i| !i.ip.is_empty())
                    .map(|i| i.ip.as_str())
                    .collect();
                let v = if ips.is_empty() {
                    svc.spec.load_balancer_ip.clone()
                } else {
                    ips.join(",")
                };
                set(&mut t, "service_loadbalancer_ip", v);
            }
            targets.push(t);
        }
        Group {
            source: String::new(),
            labels,
            targets,
        }
    }

    fn pod_of(&self, r: &Option<ObjectRef>) -> Option<&Pod> {
        let r = r.as_ref().filter(|r| r.kind == "Pod")?;
        self.pods.get(&format!("{}/{}", r.namespace, r.name))
    }

    fn build_endpoints(&self, eps: &Endpoints) -> Group {
        let mut labels = LabelSet::new();
        set(&mut labels, "namespace", eps.metadata.namespace.clone());
        if let Some(svc) = self.services.get(&eps.metadata.key()) {
            labels.extend(service_labels(svc));
        }
        object_meta_labels(&mut labels, &eps.metadata, "endpoints");
        self.namespace_labels(&mut labels, &eps.metadata.namespace);
        let mut targets = Vec::new();
        let mut seen: Vec<(&Pod, Vec<i64>)> = Vec::new();
        for ss in &eps.subsets {
            for port in &ss.ports {
                let all = ss
                    .addresses
                    .iter()
                    .map(|a| (a, "true"))
                    .chain(ss.not_ready_addresses.iter().map(|a| (a, "false")));
                for (addr, ready) in all {
                    let mut t = LabelSet::new();
                    t.insert(ADDRESS.into(), join_host_port(&addr.ip, port.port));
                    set(&mut t, "endpoint_port_name", port.name.clone());
                    set(&mut t, "endpoint_port_protocol", port.protocol.clone());
                    set(&mut t, "endpoint_ready", ready);
                    if let Some(r) = &addr.target_ref {
                        set(&mut t, "endpoint_address_target_kind", r.kind.clone());
                        set(&mut t, "endpoint_address_target_name", r.name.clone());
                    }
                    if let Some(n) = &addr.node_name {
                        set(&mut t, "endpoint_node_name", n.clone());
                    }
                    if !addr.hostname.is_empty() {
                        set(&mut t, "endpoint_hostname", addr.hostname.clone());
                    }
                    if self.attach.node {
                        let node = addr.node_name.clone().or_else(|| {
                            addr.target_ref
                                .as_ref()
                                .filter(|r| r.kind == "Node")
                                .map(|r| r.name.clone())
                        });
                        self.node_labels(&mut t, node.as_deref());
                    }
                    if let Some(pod) = self.pod_of(&addr.target_ref) {
                        t.extend(pod_labels(pod));
                        container_labels_for_port(&mut t, pod, port.port, None);
                        remember(&mut seen, pod, port.port);
                    }
                    targets.push(t);
                }
            }
        }
        targets.extend(unseen_pod_ports(&seen));
        Group {
            source: String::new(),
            labels,
            targets,
        }
    }

    fn build_slice(&self, eps: &EndpointSlice) -> Group {
        let mut labels = LabelSet::new();
        set(&mut labels, "namespace", eps.metadata.namespace.clone());
        set(
            &mut labels,
            "endpointslice_address_type",
            eps.address_type.clone(),
        );
        object_meta_labels(&mut labels, &eps.metadata, "endpointslice");
        let svc = eps
            .metadata
            .labels
            .get("kubernetes.io/service-name")
            .and_then(|n| {
                self.services
                    .get(&format!("{}/{n}", eps.metadata.namespace))
            });
        if let Some(svc) = svc {
            labels.extend(service_labels(svc));
        }
        self.namespace_labels(&mut labels, &eps.metadata.namespace);
        let group = |targets| Group {
            source: String::new(),
            labels: labels.clone(),
            targets,
        };
        // A dual-stack service's slices of the secondary family add nothing.
        if let Some(svc) = svc {
            let dual = matches!(
                svc.spec.ip_family_policy.as_deref(),
                Some("PreferDualStack") | Some("RequireDualStack")
            );
            if dual
                && svc
                    .spec
                    .ip_families
                    .first()
                    .is_some_and(|f| *f != eps.address_type)
            {
                return group(Vec::new());
            }
        }
        let mut targets = Vec::new();
        let mut seen: Vec<(&Pod, Vec<i64>)> = Vec::new();
        for ep in &eps.endpoints {
            for port in &eps.ports {
                for addr in &ep.addresses {
                    let mut t = LabelSet::new();
                    let a = match port.port {
                        Some(p) => join_host_port(addr, p),
                        None => addr.clone(),
                    };
                    t.insert(ADDRESS.into(), a);
                    if let Some(n) = &port.name {
                        set(&mut t, "endpointslice_port_name", n.clone());
                    }
                    if let Some(p) = &port.protocol {
                        set(&mut t, "endpointslice_port_protocol", p.clone());
                    }
                    if let Some(p) = port.port {
                        set(&mut t, "endpointslice_port", p.to_string());
                    }
                    if let Some(p) = &port.app_protocol {
                        set(&mut t, "endpointslice_port_app_protocol", p.clone());
                    }
                    let c = &ep.conditions;
                    for (name, v) in [
                        ("ready", c.ready),
                        ("serving", c.serving),
                        ("terminating", c.terminating),
                    ] {
                        if let Some(v) = v {
                            set(
                                &mut t,
                                &format!("endpointslice_endpoint_conditions_{name}"),
                                v.to_string(),
                            );
                        }
                    }
                    if let Some(h) = &ep.hostname {
                        set(&mut t, "endpointslice_endpoint_hostname", h.clone());
                    }
                    if let Some(r) = &ep.target_ref {
                        set(&mut t, "endpointslice_address_target_kind", r.kind.clone());
                        set(&mut t, "endpointslice_address_target_name", r.name.clone());
                    }
                    if let Some(n) = &ep.node_name {
                        set(&mut t, "endpointslice_endpoint_node_name", n.clone());
                    }
                    if let Some(z) = &ep.zone {
                        set(&mut t, "endpointslice_endpoint_zone", z.clone());
                    }
                    for (k, v) in &ep.deprecated_topology {
                        let n = sanitize_label_name(k);
                        set(
                            &mut t,
                            &format!("endpointslice_endpoint_topology_{n}"),
                            v.clone(),
                        );
                        set(
                            &mut t,
                            &format!("endpointslice_endpoint_topology_present_{n}"),
                            "true",
                        );
                    }
                    if self.attach.node {
                        let node = match &ep.target_ref {
                            Some(r) if r.kind == "Node" => Some(r.name.clone()),
                            _ => ep.node_name.clone(),
                        };
                        self.node_labels(&mut t, node.as_deref());
                    }
                    if let Some(pod) = self.pod_of(&ep.target_ref) {
                        t.extend(pod_labels(pod));
                        if let Some(p) = port.port {
                            container_labels_for_port(&mut t, pod, p, Some(()));
                            remember(&mut seen, pod, p);
                        } else {
                            remember_none(&mut seen, pod);
                        }
                    }
                    targets.push(t);
                }
            }
        }
        targets.extend(unseen_pod_ports(&seen));
        group(targets)
    }

    fn build_ingress(&self, ing: &Ingress) -> Group {
        let mut labels = LabelSet::new();
        set(&mut labels, "namespace", ing.metadata.namespace.clone());
        if let Some(c) = &ing.spec.ingress_class_name {
            set(&mut labels, "ingress_class_name", c.clone());
        }
        object_meta_labels(&mut labels, &ing.metadata, "ingress");
        self.namespace_labels(&mut labels, &ing.metadata.namespace);
        let tls_hosts: Vec<&str> = ing
            .spec
            .tls
            .iter()
            .flat_map(|t| t.hosts.iter().map(String::as_str))
            .collect();
        let mut targets = Vec::new();
        for rule in &ing.spec.rules {
            let scheme = if tls_hosts.iter().any(|p| host_matches(p, &rule.host)) {
                "https"
            } else {
                "http"
            };
            let paths: Vec<String> = match &rule.http {
                None => vec!["/".to_string()],
                Some(h) => h
                    .paths
                    .iter()
                    .map(|p| {
                        if p.path.is_empty() {
                            "/".to_string()
                        } else {
                            p.path.clone()
                        }
                    })
                    .collect(),
            };
            for path in paths {
                let mut t = LabelSet::new();
                t.insert(ADDRESS.into(), rule.host.clone());
                set(&mut t, "ingress_scheme", scheme);
                set(&mut t, "ingress_host", rule.host.clone());
                set(&mut t, "ingress_path", path);
                targets.push(t);
            }
        }
        Group {
            source: String::new(),
            labels,
            targets,
        }
    }
}

fn containers(pod: &Pod) -> impl Iterator<Item = (&Container, bool)> {
    pod.spec
        .containers
        .iter()
        .map(|c| (c, false))
        .chain(pod.spec.init_containers.iter().map(|c| (c, true)))
}

fn pod_labels(pod: &Pod) -> LabelSet {
    let mut ls = LabelSet::new();
    let ready = pod
        .status
        .conditions
        .iter()
        .find(|c| c.kind == "Ready")
        .map(|c| c.status.to_lowercase())
        .unwrap_or_else(|| "unknown".to_string());
    set(&mut ls, "pod_ip", pod.status.pod_ip.clone());
    set(&mut ls, "pod_ready", ready);
    set(&mut ls, "pod_phase", pod.status.phase.clone());
    set(&mut ls, "pod_node_name", pod.spec.node_name.clone());
    set(&mut ls, "pod_host_ip", pod.status.host_ip.clone());
    set(&mut ls, "pod_uid", pod.metadata.uid.clone());
    object_meta_labels(&mut ls, &pod.metadata, "pod");
    if let Some(o) = pod
        .metadata
        .owner_references
        .iter()
        .find(|o| o.controller == Some(true))
    {
        if !o.kind.is_empty() {
            set(&mut ls, "pod_controller_kind", o.kind.clone());
        }
        if !o.name.is_empty() {
            set(&mut ls, "pod_controller_name", o.name.clone());
        }
    }
    ls
}

fn service_labels(svc: &Service) -> LabelSet {
    let mut ls = LabelSet::new();
    set(&mut ls, "namespace", svc.metadata.namespace.clone());
    object_meta_labels(&mut ls, &svc.metadata, "service");
    ls
}

/// The container labels of the container port matching an endpoint port.
/// Endpoints take the protocol from the endpoint port, slices from the
/// container port (as Prometheus does).
fn container_labels_for_port(t: &mut LabelSet, pod: &Pod, port: i64, slice: Option<()>) {
    for (c, init) in containers(pod) {
        if let Some(cp) = c.ports.iter().find(|cp| cp.container_port == port) {
            set(t, "pod_container_name", c.name.clone());
            set(t, "pod_container_image", c.image.clone());
            set(t, "pod_container_port_name", cp.name.clone());
            set(t, "pod_container_port_number", port.to_string());
            let proto = match slice {
                Some(()) => cp.protocol.clone(),
                None => t
                    .get(&l("endpoint_port_protocol"))
                    .cloned()
                    .unwrap_or_default(),
            };
            set(t, "pod_container_port_protocol", proto);
            set(t, "pod_container_init", init.to_string());
            return;
        }
    }
}

fn remember<'a>(seen: &mut Vec<(&'a Pod, Vec<i64>)>, pod: &'a Pod, port: i64) {
    match seen.iter_mut().find(|(p, _)| std::ptr::eq(*p, pod)) {
        Some((_, ports)) => ports.push(port),
        None => seen.push((pod, vec![port])),
    }
}

fn remember_none<'a>(seen: &mut Vec<(&'a Pod, Vec<i64>)>, pod: &'a Pod) {
    if !seen.iter().any(|(p, _)| std::ptr::eq(*p, pod)) {
        seen.push((pod, Vec::new()));
    }
}

/// Targets for the container ports of referenced pods that no endpoint
/// port covered.
fn unseen_pod_ports(seen: &[(&Pod, Vec<i64>)]) -> Vec<LabelSet> {
    let mut out = Vec::new();
    for (pod, ports) in seen {
        if pod.status.pod_ip.is_empty() {
            continue;
        }
        for (c, init) in containers(pod) {
            for cp in &c.ports {
                if ports.contains(&cp.container_port) {
                    continue;
                }
                let port = cp.container_port.to_string();
                let mut t = LabelSet::new();
                t.insert(ADDRESS.into(), join_host_port(&pod.status.pod_ip, &port));
                set(&mut t, "pod_container_name", c.name.clone());
                set(&mut t, "pod_container_image", c.image.clone());
                set(&mut t, "pod_container_port_name", cp.name.clone());
                set(&mut t, "pod_container_port_number", port);
                set(&mut t, "pod_container_port_protocol", cp.protocol.clone());
                set(&mut t, "pod_container_init", init.to_string());
                t.extend(pod_labels(pod));
                out.push(t);
            }
        }
    }
    out
}

fn build_node(node: &Node) -> Option<Group> {
    let mut labels = LabelSet::new();
    set(
        &mut labels,
        "node_provider_id",
        node.spec.provider_id.clone(),
    );
    for c in &node.status.conditions {
        let n = sanitize_label_name(&c.kind.to_lowercase());
        set(
            &mut labels,
            &format!("node_condition_{n}"),
            c.status.to_lowercase(),
        );
    }
    object_meta_labels(&mut labels, &node.metadata, "node");
    let mut by_type: BTreeMap<&str, &str> = BTreeMap::new();
    for a in &node.status.addresses {
        by_type.entry(a.kind.as_str()).or_insert(a.address.as_str());
    }
    let host = [
        "InternalIP",
        "InternalDNS",
        "ExternalIP",
        "ExternalDNS",
        "LegacyHostIP",
        "Hostname",
    ]
    .iter()
    .find_map(|k| by_type.get(k))?;
    let mut t = LabelSet::new();
    t.insert(
        ADDRESS.into(),
        join_host_port(host, node.status.daemon_endpoints.kubelet_endpoint.port),
    );
    t.insert("instance".into(), node.metadata.name.clone());
    for (k, a) in &by_type {
        t.insert(
            sanitize_label_name(&format!("{PREFIX}node_address_{k}")),
            a.to_string(),
        );
    }
    Some(Group {
        source: String::new(),
        labels,
        targets: vec![t],
    })
}

/// A TLS host pattern (`*.example.com` matches one label) against a host.
fn host_matches(pattern: &str, host: &str) -> bool {
    if pattern == host {
        return true;
    }
    let p: Vec<&str> = pattern.split('.').collect();
    let h: Vec<&str> = host.split('.').collect();
    p[0] == "*" && p.len() == h.len() && p[1..] == h[1..]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_host_patterns() {
        assert!(host_matches("*.example.com", "a.example.com"));
        assert!(!host_matches("*.example.com", "a.b.example.com"));
        assert!(host_matches("x.io", "x.io"));
        assert!(!host_matches("y.io", "x.io"));
    }
}
