//! `ascribe deployment register|list|show`.

use anyhow::Context as _;
use ascribe_registry::changes::{register_deployment, NewDeployment};
use ascribe_registry::queries;
use serde_json::json;

use crate::cli::{DeploymentCommand, DeploymentRegisterArgs};
use crate::commands::{append, print_json};
use crate::context::{actor, Context};
use crate::Outcome;

/// Runs one `deployment` subcommand.
pub fn run(context: &Context, command: DeploymentCommand) -> anyhow::Result<Outcome> {
    match command {
        DeploymentCommand::Register(args) => register(context, args),
        DeploymentCommand::List(output) => {
            let deployments = queries::deployments(context.backend()?.as_mut())?;
            if output.json {
                print_json(&deployments)?;
            } else {
                println!(
                    "{:<24} {:<18} {:<32} checkpoint",
                    "name", "dialect", "upstream model"
                );
                for deployment in deployments {
                    let flag = if deployment.moving_name {
                        " [moving name]"
                    } else {
                        ""
                    };
                    println!(
                        "{:<24} {:<18} {:<32} {}{flag}",
                        deployment.name,
                        deployment.dialect,
                        deployment.upstream_model,
                        deployment.checkpoint
                    );
                }
            }
            Ok(Outcome::Success)
        }
        DeploymentCommand::Show { name, output } => {
            let deployment = queries::deployment(context.backend()?.as_mut(), &name)?
                .with_context(|| {
                    format!("no deployment `{name}`; `ascribe deployment list` shows them")
                })?;
            if output.json {
                print_json(&deployment)?;
            } else {
                println!("{}", serde_json::to_string_pretty(&deployment)?);
            }
            Ok(Outcome::Success)
        }
    }
}

fn register(context: &Context, args: DeploymentRegisterArgs) -> anyhow::Result<Outcome> {
    let actor = actor(&args.actor);
    let deployment = NewDeployment {
        name: args.name.clone(),
        checkpoint: args.checkpoint,
        dialect: args.dialect.parse().map_err(anyhow::Error::msg)?,
        base_url: args.base_url,
        upstream_model: args.upstream_model,
        expect_served: args.expect_served,
        api_key_env: args.api_key_env,
        allow_moving_name: args.allow_moving_name,
        retention: args.retention.parse().map_err(anyhow::Error::msg)?,
    };
    let seq = append(
        &mut context.ledger()?,
        register_deployment(deployment, &actor),
    )?;
    tracing::info!(deployment = %args.name, seq, "deployment registered");
    if args.output.json {
        print_json(&json!({"deployment": args.name, "seq": seq}))?;
    } else {
        println!("registered deployment `{}` (ledger seq {seq})", args.name);
    }
    Ok(Outcome::Success)
}
