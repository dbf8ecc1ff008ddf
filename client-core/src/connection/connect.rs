//! Opening a connection: NATS, the client's inboxes, the first registration, then the task and
//! the publish queue.

use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};

use async_nats::Subject;
use stan_protocol::subjects;
use tokio::sync::{broadcast, mpsc, watch, Notify, Semaphore};

use super::nats::open_nats;
use super::pending::PendingPubs;
use super::publish::{run_pub_queue, QueuedPub};
use super::session::{RegisterCtx, SessionState};
use super::shared::Shared;
use super::task::{Task, TaskInit};
use super::wire::Encoder;
use crate::command::Command;
use crate::error::{Error, ErrorKind, Result};
use crate::options::ConnectOptions;

/// What a client holds of its connection. The task runs while a `cmd` sender exists; the
/// publish queue while a `pub_queue` sender does.
pub(crate) struct Handles {
    pub(crate) shared: Arc<Shared>,
    pub(crate) cmd: mpsc::UnboundedSender<Command>,
    pub(crate) pub_queue: mpsc::UnboundedSender<QueuedPub>,
}

/// Opens (or borrows) the NATS connection, subscribes the client's inboxes, registers with the
/// streaming server and starts the connection task and the publish queue.
pub(crate) async fn open(options: &ConnectOptions) -> Result<Handles> {
    let resolved = options.resolve()?;
    let (nats, nats_events, owns_nats) = match options.nats_client.clone() {
        Some(c) => (c, None, false),
        None => {
            let (c, rx) = open_nats(options, resolved.connect_wait).await?;
            (c, Some(rx), true)
        }
    };
    let result = async {
        let inbox_base = subjects::new_inbox();
        let inbox_sub = nats
            .subscribe(format!("{inbox_base}.>"))
            .await
            .map_err(|e| Error::with_source(ErrorKind::Transport, "nats: subscribe failed", e))?;
        let pub_ack_inbox = subjects::new_ack_inbox();
        let ack_sub = nats
            .subscribe(pub_ack_inbox.clone())
            .await
            .map_err(|e| Error::with_source(ErrorKind::Transport, "nats: subscribe failed", e))?;
        let ctx = RegisterCtx {
            nats: nats.clone(),
            client_id: options.client_id.clone(),
            resolved: resolved.clone(),
            inbox_base,
        };
        let hb_id = 1;
        let (response, conn_id) = ctx.register(hb_id).await?;
        Ok((ctx, inbox_sub, ack_sub, pub_ack_inbox, response, conn_id))
    }
    .await;
    let (ctx, inbox_sub, ack_sub, pub_ack_inbox, response, conn_id) = match result {
        Ok(v) => v,
        Err(e) => {
            if owns_nats {
                let _ = tokio::time::timeout(resolved.connect_wait, nats.drain()).await;
            }
            return Err(e);
        }
    };
    let (events, _) = broadcast::channel(256);
    let (session_tx, _) = watch::channel(SessionState::Resuming);
    let shared = Arc::new(Shared {
        client_id: options.client_id.clone(),
        cluster_id: options.cluster_id.clone(),
        nats,
        pub_ack_inbox: Subject::from(pub_ack_inbox),
        connect_wait: resolved.connect_wait,
        pub_ack_wait: resolved.pub_ack_wait,
        permits: Arc::new(Semaphore::new(resolved.max_pub_acks)),
        pending: Mutex::new(PendingPubs::default()),
        encoder: Encoder::default(),
        pub_timer: Notify::new(),
        session: session_tx,
        events,
        next_sub_id: AtomicU64::new(1),
        open_subs: Mutex::new(Vec::new()),
    });
    let (cmd_tx, cmd_rx) = mpsc::unbounded_channel();
    let task = Task::new(TaskInit {
        shared: shared.clone(),
        ctx,
        cmd_rx,
        nats_events,
        owns_nats,
        inbox_sub,
        ack_sub,
        hb_id: 1,
        response,
        conn_id,
    });
    tokio::spawn(task.run());
    let (pub_tx, pub_rx) = mpsc::unbounded_channel();
    tokio::spawn(run_pub_queue(shared.clone(), pub_rx));
    Ok(Handles {
        shared,
        cmd: cmd_tx,
        pub_queue: pub_tx,
    })
}
